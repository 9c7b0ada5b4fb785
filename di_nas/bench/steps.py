"""What `di_nas.bench` times: compiled train steps on random tensors, and the timer.

A benchmark network is a `Net` value (search network sizes plus the image size). Both steps
are the jobs' own step machines (`di_nas.training.loops`), one step per call on a fixed batch:
the supernet step is `SharedLoop.train_batch` (the architecture is a tensor argument: one trace
for every architecture); the child step is the same architecture as a standalone Keras model
trained by `ChildLoop.train_batch` (forward, loss, tape gradient, Keras SGD with Nesterov
momentum; no clipping, decay or label smoothing). This module reads no data, writes no files
and keeps no global state.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping

import keras
import numpy as np
import tensorflow as tf

from di_nas.child import build_child
from di_nas.config import SpaceConfig
from di_nas.supernet import build_supernet
from di_nas.training.loops import ChildLoop, SharedLoop
from di_nas.training.shared_step import SharedWeightTrainer

NUM_CLASSES = 10  # CIFAR-10 shaped inputs.
CHANNELS = 3
# The cosine schedule is irrelevant to step time; make it long enough never to end.
TOTAL_STEPS = 1_000_000


@dataclasses.dataclass(frozen=True)
class Net:
    """A search network and the (square, RGB) image size it is fed.

    The figures are defined on enas_micro; `space="nb201"` (with `num_layers` read as cells
    per stage, `stem_multiplier` unused) is a network that traces in seconds, for tests.
    """

    num_layers: int
    filters: int
    stem_multiplier: int
    image_size: int
    space: str = "enas_micro"

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.image_size, self.image_size, CHANNELS)

    def space_cfg(self) -> SpaceConfig:
        # ENAS's per-input weights, as the CIFAR-10 preset searches with.
        return SpaceConfig(name=self.space, num_layers=self.num_layers, filters=self.filters,
                           stem_multiplier=self.stem_multiplier, num_cells=self.num_layers,
                           share_across_inputs=False, cell_residual=False)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def random_batch(net: Net, batch: int, seed: int) -> tuple[tf.Tensor, tf.Tensor]:
    """CIFAR-10 shaped random images (standard normal) and labels, fixed by `seed`."""
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((batch, *net.image_shape)).astype(np.float32)
    labels = rng.integers(0, NUM_CLASSES, size=batch).astype(np.int32)
    return tf.constant(images), tf.constant(labels)


def distinct_archs(space, count: int, seed: int) -> list:
    """`count` different uniformly sampled architectures of `space`."""
    rng = np.random.default_rng(seed)
    archs, seen = [], set()
    while len(archs) < count:
        arch = space.sample(rng)
        if arch.values not in seen:
            seen.add(arch.values)
            archs.append(arch)
    return archs


def build_supernet_net(net: Net, seed: int):
    return build_supernet(net.space, NUM_CLASSES, net.image_shape, net.space_cfg(), seed=seed)


def make_trainer(supernet, optim_cfg, di_cfg, jit_compile: bool = False) -> SharedWeightTrainer:
    """A trainer of `supernet`; DI on or off as `di_cfg.enabled` says."""
    return SharedWeightTrainer(supernet, optim_cfg, di_cfg, total_steps=TOTAL_STEPS,
                               jit_compile=jit_compile)


def supernet_step(trainer: SharedWeightTrainer) -> tf.types.experimental.GenericFunction:
    """`tf.function((images, labels, arch) -> metrics)`: one shared-weight step of the search's
    machine."""
    return SharedLoop(trainer).train_batch


def child_step(model: keras.Model, learning_rate: float):
    """`tf.function((images, labels) -> metrics)`: one step of final training's machine on a
    standalone child."""
    optimizer = keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9, nesterov=True)
    optimizer.build(model.trainable_variables)  # Slot variables outside the traced step.
    return ChildLoop(model, optimizer, NUM_CLASSES).train_batch


def build_child_net(arch, net: Net) -> keras.Model:
    return build_child(arch, NUM_CLASSES, net.image_shape, num_layers=net.num_layers,
                       filters=net.filters, stem_multiplier=net.stem_multiplier)


def timed_call(fn: Callable[[], object]) -> float:
    """Seconds one call of `fn` takes, until its result is on the host."""
    start = time.perf_counter()
    _block(fn())
    return time.perf_counter() - start


def _block(result) -> None:
    # A tf.function returns once it has run, but fetching the outputs makes that explicit.
    for t in tf.nest.flatten(result):
        if isinstance(t, tf.Tensor):
            t.numpy()


def round_robin_medians(fns: Mapping[str, Callable[[], object]], steps: int) -> dict[str, float]:
    """Median milliseconds per call of each of `fns` over `steps` rounds.

    Each round calls every function once, in turn, so load from other processes on the machine
    falls on all of them alike and the ratios stay meaningful on a shared, noisy CPU.
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(steps):
        for name, fn in fns.items():
            times[name].append(timed_call(fn))
    return {name: 1000.0 * float(np.median(t)) for name, t in times.items()}
