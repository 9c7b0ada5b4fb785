"""`di-nas-bench --accelerator`: the figures a GPU or TPU user needs before a CIFAR-10 search.

One command, one JSON (``<output_dir>/accelerator.json`` or ``--output``), on whatever devices
TensorFlow sees, at the CIFAR-10 search size (`flags/cifar10_search.cfg`: batch 160, 6 normal
+ 2 reduction cells of 20 filters, 32x32x3 inputs):

- step times (median ms) of the plain supernet, the same architectures' standalone children,
  the DI step and the reward evaluation of one batch, in float32, and their ratios
  ``supernet_over_child`` and ``di_over_plain``;
- ``mixed_precision_speedup``: the float32 DI step over the DI step under the mixed policy
  (``--precision``, or mixed_bfloat16 when it is float32), and the same for the child;
- ``xla_compile_seconds`` and ``xla_speedup``: the DI step with its forward and backward pass
  XLA-compiled (`SharedWeightTrainer(jit_compile=True)`), over the default one;
- ``projected_search_hours``: the preset's wall time from those step times (shared steps,
  controller rewards, the final ranking of candidates), in float32 and with the fastest
  setting measured; the controller's own cost and the input pipeline are left out.

Steps run on random tensors (no data is read), traced and run once before they are timed.
"""

from __future__ import annotations

import dataclasses
import functools
import logging

import numpy as np

from di_nas.bench import steps as S
from di_nas.training import precision
from di_nas.training.loops import SharedLoop

log = logging.getLogger("di_nas.bench")

# What `flags/cifar10_search.cfg` runs (tests check these against the file): 50,000 CIFAR-10
# training images, half of them search-valid.
PRESET = {"epochs": 150, "batch": 160, "train_examples": 25_000, "valid_examples": 25_000,
          "controller_steps": 30, "controller_aggregate": 10, "num_candidates": 100}


@dataclasses.dataclass(frozen=True)
class AcceleratorSizes:
    net: S.Net = S.Net(6, 20, 3, 32)
    batch: int = 160
    archs: int = 3
    steps: int = 10
    xla: bool = True  # Tests turn it off: compiling for a CPU takes minutes.


def projected_hours(step_ms: float, eval_ms: float, preset: dict = PRESET) -> float:
    """Hours of the preset's search at `step_ms` per shared step and `eval_ms` per reward batch."""
    batches = preset["train_examples"] // preset["batch"]
    valid_batches = preset["valid_examples"] // preset["batch"]
    per_epoch = (batches * step_ms
                 + preset["controller_steps"] * preset["controller_aggregate"] * eval_ms)
    derive = preset["num_candidates"] * valid_batches * eval_ms
    return (preset["epochs"] * per_epoch + derive) / 3.6e6


def _di_step(net: S.Net, cfg, *, policy="float32", jit_compile=False):
    with precision.policy(policy):
        supernet = S.build_supernet_net(net, cfg.seed)
        trainer = S.make_trainer(supernet, cfg.optim, dataclasses.replace(cfg.di, enabled=True),
                                 jit_compile=jit_compile)
    return S.supernet_step(trainer)


def _child_step(arch, net: S.Net, cfg, policy="float32"):
    with precision.policy(policy):
        return S.child_step(S.build_child_net(arch, net), cfg.optim.learning_rate)


def accelerator_figures(cfg, sizes: AcceleratorSizes = AcceleratorSizes()) -> dict:
    net = sizes.net
    mixed = cfg.distribute.precision if cfg.distribute.precision != "float32" else "mixed_bfloat16"
    images, labels = S.random_batch(net, sizes.batch, cfg.seed)
    supernet = S.build_supernet_net(net, cfg.seed)
    plain = S.make_trainer(supernet, cfg.optim, dataclasses.replace(cfg.di, enabled=False))
    loop = SharedLoop(plain)
    steps = {"supernet": loop.train_batch, "di": _di_step(net, cfg),
             "di_mixed": _di_step(net, cfg, policy=mixed)}
    archs = S.distinct_archs(supernet.space, sizes.archs, cfg.seed)
    first = archs[0].to_tensor()
    traced = {name: S.timed_call(functools.partial(fn, images, labels, first))
              for name, fn in steps.items()}
    log.info("traced %s", ", ".join(f"{k} in {v:.1f}s" for k, v in traced.items()))
    xla_compile_seconds = None
    if sizes.xla:
        steps["di_xla"] = _di_step(net, cfg, jit_compile=True)
        xla_compile_seconds = S.timed_call(
            functools.partial(steps["di_xla"], images, labels, first))
        log.info("XLA-compiled the DI step in %.1fs", xla_compile_seconds)
    rows = []
    for arch in archs:
        values = arch.to_tensor()
        fns = {name: functools.partial(fn, images, labels, values) for name, fn in steps.items()}
        fns["child"] = functools.partial(_child_step(arch, net, cfg), images, labels)
        fns["child_mixed"] = functools.partial(_child_step(arch, net, cfg, mixed), images, labels)
        fns["eval"] = functools.partial(loop.eval_batch, images, labels, values)
        for fn in fns.values():
            S.timed_call(fn)  # Traces the children; runs every step once untimed.
        rows.append(S.round_robin_medians(fns, sizes.steps))
        log.info("arch %d/%d: %s", len(rows), len(archs),
                 ", ".join(f"{k} {v:.1f} ms" for k, v in rows[-1].items()))
    ms = {k: float(np.median([r[k] for r in rows])) for k in rows[0]}

    def ratio(a, b):
        return float(np.mean([r[a] / r[b] for r in rows]))

    fastest = min(ms["di"], ms["di_mixed"], ms.get("di_xla", np.inf))
    return {
        **{f"{k}_step_ms": v for k, v in ms.items() if k != "eval"},
        "eval_batch_ms": ms["eval"],
        "supernet_over_child": ratio("supernet", "child"),
        "di_over_plain": ratio("di", "supernet"),
        "mixed_precision": mixed,
        "mixed_precision_speedup": ratio("di", "di_mixed"),
        "child_mixed_precision_speedup": ratio("child", "child_mixed"),
        "xla_compile_seconds": xla_compile_seconds,
        "xla_speedup": ratio("di", "di_xla") if sizes.xla else None,
        "trace_seconds": traced,
        "projected_search_hours": projected_hours(ms["di"], ms["eval"]),
        "projected_search_hours_fastest": projected_hours(fastest, ms["eval"]),
        "preset": dict(PRESET),
        "sizes": dataclasses.asdict(sizes),
    }
