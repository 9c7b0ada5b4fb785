"""Typed, frozen configuration of every di-nas job.

One ``Config`` value describes a job; it is built from flags in exactly one place
(``di_nas.cli.flags.build_config``) or from the ``tiny()`` preset in tests. The defaults ARE the
digits search preset (``flags/digits_search.cfg`` restates them; a test checks they agree).

Every section validates itself in ``__post_init__`` and raises ``UserError`` with a one-line
message. This module must not import TensorFlow, define flags or touch the file system.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from di_nas.errors import UserError
from di_nas.search_space import registry as space_registry

SPACES = space_registry.names()  # The registered search spaces (importing them needs no TF).
CONTROLLERS = ("reinforce", "random", "bayesian")
DI_INPUTS = ("mean", "covariance")
DI_PROJECT = ("gradient", "step", "buffer")
OFFPATH_MOMENTUM = ("lazy", "decay")
PD_PROTOCOLS = ("search", "pair")
STUDIES = ("pd", "rank", "search")
STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(message)


def _positive(section: str, **values: float) -> None:
    for name, value in values.items():
        _check(value > 0, f"{section}{'.' if section else ''}{name} must be positive, "
                          f"got {value!r}")


def _non_negative(section: str, **values: float) -> None:
    for name, value in values.items():
        _check(value >= 0, f"{section}{'.' if section else ''}{name} must be >= 0, "
                           f"got {value!r}")


def _choice(section: str, name: str, value: str, choices: tuple[str, ...]) -> None:
    _check(value in choices,
           f"{section}.{name}={value!r} is not known: use one of {', '.join(choices)}")


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from and how they are batched and augmented.

    ``dataset`` is ``digits`` (scikit-learn's 8x8 digits), a TFDS name (``cifar10``),
    ``npz:PATH`` or ``folder:PATH``. Pad-crop-flip augmentation is applied to CIFAR-like
    32x32 colour data; other fixed-size data (digits, MNIST) get pad-crop without flips.
    """

    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    valid_fraction: float = 0.5
    batch_size: int = 64
    eval_batch_size: int = 256
    augment: bool = True
    cutout: int = 0
    image_size: int = 0
    shuffle_buffer: int = 10000

    def __post_init__(self):
        _check(bool(self.dataset and self.dataset.strip()),
               "data.dataset is empty: use digits, a TFDS name, npz:PATH or folder:PATH")
        _check(0.0 < self.valid_fraction < 1.0,
               f"data.valid_fraction must be in (0, 1), got {self.valid_fraction!r}")
        _positive("data", batch_size=self.batch_size, eval_batch_size=self.eval_batch_size,
                  shuffle_buffer=self.shuffle_buffer)
        _non_negative("data", cutout=self.cutout, image_size=self.image_size)


@dataclass(frozen=True)
class SpaceConfig:
    """The search space and the size of the search network (supernet)."""

    name: str = "enas_micro"
    num_layers: int = 2
    filters: int = 20
    stem_multiplier: int = 3
    share_across_inputs: bool = True
    num_cells: int = 5
    bn_affine: bool = False

    def __post_init__(self):
        _choice("space", "name", self.name, SPACES)
        _positive("space", num_layers=self.num_layers, filters=self.filters,
                  stem_multiplier=self.stem_multiplier, num_cells=self.num_cells)


@dataclass(frozen=True)
class OptimConfig:
    """SGD with a cosine schedule for the shared weights during the search."""

    learning_rate: float = 0.05
    learning_rate_min: float = 0.0005
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    grad_clip_norm: float = 5.0
    offpath_momentum: str = "lazy"

    def __post_init__(self):
        _choice("optim", "offpath_momentum", self.offpath_momentum, OFFPATH_MOMENTUM)
        _positive("optim", learning_rate=self.learning_rate)
        _non_negative("optim", learning_rate_min=self.learning_rate_min,
                      momentum=self.momentum, weight_decay=self.weight_decay,
                      grad_clip_norm=self.grad_clip_norm)
        _check(self.learning_rate_min <= self.learning_rate,
               "optim.learning_rate_min must not exceed optim.learning_rate")


@dataclass(frozen=True)
class DIConfig:
    """The disturbance-immune projection of shared-weight gradients.

    ``inputs`` is what `P` protects: ``mean`` (each kernel's mean input, the paper's
    statistic) or ``covariance`` (its inputs' second moment, centred where batch norm follows;
    see `di_nas.projection`). ``beta`` is on the scale of that statistic: the default 10 for
    ``covariance`` came from the PD study on digits; the paper's statistic wants a small one
    (1e-3). ``reset`` is ``never``, ``epoch`` or a positive number of steps written as a string.
    ``project`` is what `P` is applied to: ``step`` (the whole update: gradient, weight decay
    and the Nesterov momentum direction, so it lies in `P`'s range), ``buffer`` (the gradient
    with weight decay, and the momentum buffer re-projected each step) or ``gradient`` (the raw
    gradient only; momentum and weight decay then leak past `P`).
    """

    enabled: bool = True
    beta: float = 10.0
    scale_beta: bool = False
    reset: str = "epoch"
    decay: float = 0.0
    max_dim: int = 4096
    sub_batches: int = 1
    inputs: str = "covariance"
    project: str = "step"

    def __post_init__(self):
        _positive("di", beta=self.beta, max_dim=self.max_dim, sub_batches=self.sub_batches)
        _choice("di", "inputs", self.inputs, DI_INPUTS)
        _choice("di", "project", self.project, DI_PROJECT)
        _check(self.inputs == "mean" or self.sub_batches == 1,
               "di.sub_batches applies to di.inputs=mean only: set --di_sub_batches=1")
        _check(0.0 <= self.decay <= 1.0, f"di.decay must be in [0, 1], got {self.decay!r}")
        ok = self.reset in ("never", "epoch") or (self.reset.isdigit() and int(self.reset) > 0)
        _check(ok, f"di.reset={self.reset!r} is not known: use never, epoch or a positive "
                   "number of steps")

    @property
    def reset_steps(self) -> int | None:
        """The reset period in steps when ``reset`` is a number, else None."""
        return int(self.reset) if self.reset.isdigit() else None


@dataclass(frozen=True)
class ControllerConfig:
    """The architecture sampler: REINFORCE LSTM (ENAS) or a keras_tuner baseline."""

    name: str = "reinforce"
    lstm_units: int = 64
    learning_rate: float = 0.0035
    entropy_weight: float = 1e-4
    baseline_decay: float = 0.99
    tanh_constant: float = 1.10
    op_tanh_reduce: float = 2.5
    temperature: float = 5.0
    op_prior: bool = True
    steps_per_epoch: int = 30
    aggregate: int = 10

    def __post_init__(self):
        _choice("controller", "name", self.name, CONTROLLERS)
        _positive("controller", lstm_units=self.lstm_units, learning_rate=self.learning_rate,
                  temperature=self.temperature, steps_per_epoch=self.steps_per_epoch,
                  aggregate=self.aggregate, op_tanh_reduce=self.op_tanh_reduce)
        _non_negative("controller", entropy_weight=self.entropy_weight,
                      tanh_constant=self.tanh_constant)
        _check(0.0 <= self.baseline_decay < 1.0,
               f"controller.baseline_decay must be in [0, 1), got {self.baseline_decay!r}")


@dataclass(frozen=True)
class SearchConfig:
    """Length of the search; ``steps_per_epoch=0`` means one pass over search-train."""

    epochs: int = 15
    steps_per_epoch: int = 40
    num_candidates: int = 100
    log_every: int = 10
    deterministic: bool = False

    def __post_init__(self):
        _positive("search", epochs=self.epochs, num_candidates=self.num_candidates,
                  log_every=self.log_every)
        _non_negative("search", steps_per_epoch=self.steps_per_epoch)


@dataclass(frozen=True)
class FinalConfig:
    """Training the derived architecture from scratch (``architecture`` is a JSON path)."""

    architecture: str | None = None
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 0.05
    learning_rate_min: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 3e-4
    num_layers: int = 6
    filters: int = 20
    auxiliary_weight: float = 0.0
    drop_path: float = 0.0
    label_smoothing: float = 0.0
    grad_clip_norm: float = 5.0

    def __post_init__(self):
        _positive("final", epochs=self.epochs, batch_size=self.batch_size,
                  learning_rate=self.learning_rate, num_layers=self.num_layers,
                  filters=self.filters)
        _non_negative("final", learning_rate_min=self.learning_rate_min,
                      momentum=self.momentum, weight_decay=self.weight_decay,
                      auxiliary_weight=self.auxiliary_weight, grad_clip_norm=self.grad_clip_norm)
        _check(0.0 <= self.drop_path < 1.0,
               f"final.drop_path must be in [0, 1), got {self.drop_path!r}")
        _check(0.0 <= self.label_smoothing < 1.0,
               f"final.label_smoothing must be in [0, 1), got {self.label_smoothing!r}")


@dataclass(frozen=True)
class ExportConfig:
    """SavedModel export; ``export_dir=None`` means ``<output_dir>/saved_model``."""

    export_dir: str | None = None
    tflite: bool = False


@dataclass(frozen=True)
class StudyConfig:
    """Performance-disturbance (``pd``), rank-correlation (``rank``) and search (``search``)
    studies."""

    name: str = "pd"
    pairs: int = 20
    steps: int = 30
    warmup_steps: int = 300
    archs: int = 24
    child_steps: int = 300
    supernet_steps: int = 1500
    seeds: int = 3
    protocol: str = "search"
    window: int = 20
    random_archs: int = 10

    def __post_init__(self):
        _choice("study", "name", self.name, STUDIES)
        _choice("study", "protocol", self.protocol, PD_PROTOCOLS)
        _positive("study", window=self.window)
        _positive("study", pairs=self.pairs, steps=self.steps, archs=self.archs,
                  child_steps=self.child_steps, supernet_steps=self.supernet_steps,
                  seeds=self.seeds, random_archs=self.random_archs)
        _non_negative("study", warmup_steps=self.warmup_steps)


@dataclass(frozen=True)
class DistributeConfig:
    """Which tf.distribute strategy to build (``devices`` is a comma-separated list)."""

    strategy: str = "default"
    tpu: str = ""
    devices: str = ""
    jit_compile: bool = False

    def __post_init__(self):
        _choice("distribute", "strategy", self.strategy, STRATEGIES)

    @property
    def device_list(self) -> tuple[str, ...]:
        """``devices`` split on commas, empty entries dropped."""
        return tuple(d.strip() for d in self.devices.split(",") if d.strip())


@dataclass(frozen=True)
class BenchConfig:
    """Micro-benchmarks; ``output=''`` means ``<output_dir>/bench.json``."""

    output: str = ""
    quick: bool = False


# Sections whose fields define what a search computes (used by ``fingerprint``), with the
# fields that do not (where to read data from, logging, evaluation batch size).
_FINGERPRINT_SECTIONS = {
    "data": ("data_dir", "download", "eval_batch_size"),
    "space": (),
    "optim": (),
    "di": (),
    "controller": (),
    "search": ("log_every",),
}


@dataclass(frozen=True)
class Config:
    """Everything one di-nas job needs."""

    data: DataConfig = field(default_factory=DataConfig)
    space: SpaceConfig = field(default_factory=SpaceConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    di: DIConfig = field(default_factory=DIConfig)
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    final: FinalConfig = field(default_factory=FinalConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    study: StudyConfig = field(default_factory=StudyConfig)
    distribute: DistributeConfig = field(default_factory=DistributeConfig)
    bench: BenchConfig = field(default_factory=BenchConfig)
    output_dir: str = "runs/digits_search"
    seed: int = 0

    def __post_init__(self):
        _check(bool(self.output_dir), "output_dir is empty: pass --output_dir=DIR")
        _non_negative("", seed=self.seed)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable nested dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Config:
        """Inverse of ``to_dict``; unknown keys raise ``UserError``."""
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name not in values:
                continue
            value = values[f.name]
            if isinstance(value, dict):
                section_cls = type(f.default_factory())
                names = {sf.name for sf in dataclasses.fields(section_cls)}
                unknown = sorted(set(value) - names)
                _check(not unknown, f"unknown config field(s) {f.name}.{unknown}")
                value = section_cls(**value)
            kwargs[f.name] = value
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        _check(not unknown, f"unknown config section(s) {unknown}")
        return cls(**kwargs)

    def replace(self, **sections: Any) -> Config:
        """A copy with some fields changed: ``cfg.replace(data={'batch_size': 8}, seed=1)``."""
        kwargs = {}
        for name, value in sections.items():
            if isinstance(value, dict):
                value = dataclasses.replace(getattr(self, name), **value)
            kwargs[name] = value
        return dataclasses.replace(self, **kwargs)

    def search_dict(self) -> dict[str, Any]:
        """The fields that define a search (what ``fingerprint`` hashes)."""
        out: dict[str, Any] = {"seed": self.seed}
        for section, ignored in _FINGERPRINT_SECTIONS.items():
            values = dataclasses.asdict(getattr(self, section))
            out[section] = {k: v for k, v in values.items() if k not in ignored}
        return out

    def fingerprint(self) -> str:
        """A stable 16-hex-digit hash of ``search_dict()``.

        Used to refuse resuming an ``output_dir`` that a different search configuration wrote.
        """
        text = json.dumps(self.search_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def tiny(output_dir: str = "runs/tiny", seed: int = 0) -> Config:
    """A configuration small enough for unit tests on one CPU core (seconds, not minutes)."""
    return Config(
        data=DataConfig(batch_size=16, eval_batch_size=32, shuffle_buffer=256),
        space=SpaceConfig(num_layers=1, filters=4, stem_multiplier=1, num_cells=1),
        controller=ControllerConfig(lstm_units=8, steps_per_epoch=2, aggregate=1),
        search=SearchConfig(epochs=1, steps_per_epoch=2, num_candidates=3, log_every=1),
        final=FinalConfig(epochs=1, batch_size=16, num_layers=1, filters=4),
        study=StudyConfig(pairs=2, steps=2, warmup_steps=2, archs=3, child_steps=2, seeds=1,
                          supernet_steps=4),
        bench=BenchConfig(quick=True),
        output_dir=output_dir,
        seed=seed,
    )
