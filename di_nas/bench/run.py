"""`di-nas-bench`: the step-time figures of the weight-sharing supernet, DI and the oracle.

`run_bench(cfg)` measures, within one run and on random CIFAR-10 shaped tensors:

- ``supernet_over_child``: the plain (DI off) supernet step over the same architecture's
  standalone child step, per architecture, averaged over sampled architectures (target 1.15);
- ``di_over_plain``: the DI step over the plain step on the same architectures (target 1.25),
  with ``projector_bytes`` of the default search network;
- ``traces_for_50_archs``: how often the plain supernet step traced after that many different
  architectures (expected 1): the timed step itself, run on further architectures, which
  costs a few steps where a separate network would cost another trace of a minute or more;
- ``plain_trace_seconds`` / ``di_trace_seconds``: each step's first call (tracing, graph
  optimisation, one run), which a search pays once per process;
- ``oracle_ms_per_trial_1k`` / ``_20k`` and their ratio (`di_nas.bench_oracle`; target 1.5);
- ``xla_compile_seconds``, ``xla_step_over_default`` and ``xla_max_rel_error``: the DI step
  with its forward and backward pass XLA-compiled, against the default step on the same
  architectures, from the same weights (``Sizes.xla_net``; skipped where it is None);

plus the raw medians in milliseconds and the environment. Every step is traced (and run once)
before it is timed; the supernet, child and DI steps of an architecture are then timed round
robin, so a shared machine's load falls on all of them alike. The report is printed and
written atomically as JSON to ``--output`` (default ``<output_dir>/bench.json``).

`--quick` keeps the figures' names but uses a smaller network, fewer architectures, steps and
trials (all recorded in the report). `--accelerator` writes the GPU/TPU figures of
`di_nas.bench.accelerator` instead. This module trains nothing beyond the timed steps, reads
no data and defines no flags.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import tempfile

import numpy as np
import tensorflow as tf

from di_nas.bench import accelerator
from di_nas.bench import steps as S
from di_nas.bench.oracle import oracle_ms_per_trial
from di_nas.config import SpaceConfig
from di_nas.io import atomic_write_json

log = logging.getLogger("di_nas.bench")

# ENAS's CIFAR-10 search network (flags/cifar10_search.cfg: 6 normal cells x 20 filters) at
# 32x32: the network the step figures are about, whatever the digits default is sized to.
_SEARCH = SpaceConfig(num_layers=6)
DEFAULT_NET = S.Net(_SEARCH.num_layers, _SEARCH.filters, _SEARCH.stem_multiplier, 32)
TARGETS = {"supernet_over_child": 1.15, "traces_for_50_archs": 1, "di_over_plain": 1.25,
           "oracle_20k_over_1k": 1.5}


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How much a benchmark run measures.

    Attributes:
      net: network of the step figures (supernet, child, DI) and of the tracing count.
      batch: batch size of those steps.
      archs: sampled architectures the step ratios average over.
      steps: timed steps per step function and architecture (the median is kept).
      trace_archs: different architectures the plain step has run when its tracing count is
        read (the `archs` timed ones first, then more, one step each).
      projector_net: network whose DI projector memory is reported.
      oracle_trials: (small, large) oracle run lengths ("1k" and "20k" in full runs).
      xla_net: network of the XLA figures, or None to skip them (compiling enas_micro's DI
        step for a CPU takes minutes).
    """

    net: S.Net
    batch: int
    archs: int
    steps: int
    trace_archs: int
    projector_net: S.Net
    oracle_trials: tuple[int, int]
    xla_net: S.Net | None = None

    def __post_init__(self):
        if not 0 < self.archs <= self.trace_archs:
            raise ValueError(f"need 0 < archs={self.archs} <= trace_archs={self.trace_archs}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# The XLA figures' network: one normal cell (plus the two reduction cells) of 8 filters at
# 8x8. XLA compiles every branch of every `switch_case` for a CPU, so even this network's DI
# step takes minutes to compile there (483 s on a 2-core AVX2-only EPYC under load); the search
# network's would take far longer. Its step time is the default step's only at this size.
XLA_NET = S.Net(num_layers=1, filters=8, stem_multiplier=1, image_size=8)
FULL = Sizes(net=DEFAULT_NET, batch=64, archs=5, steps=10, trace_archs=50,
             projector_net=DEFAULT_NET, oracle_trials=(1000, 20000), xla_net=XLA_NET)
# `--quick` leaves the XLA figures out (their compile alone exceeds its time budget).
QUICK = dataclasses.replace(FULL, net=dataclasses.replace(DEFAULT_NET, num_layers=2), archs=2,
                            steps=3, trace_archs=10, oracle_trials=(1000, 2000), xla_net=None)


def _trainers(supernet, cfg):
    plain = S.make_trainer(supernet, cfg.optim, dataclasses.replace(cfg.di, enabled=False))
    di = S.make_trainer(supernet, cfg.optim, dataclasses.replace(cfg.di, enabled=True))
    return plain, di


def step_figures(sizes: Sizes, cfg) -> dict:
    """The step ratios, their raw medians (ms) and the plain step's tracing count."""
    net = sizes.net
    supernet = S.build_supernet_net(net, cfg.seed)
    plain, di = _trainers(supernet, cfg)
    plain_step, di_step = S.supernet_step(plain), S.supernet_step(di)
    images, labels = S.random_batch(net, sizes.batch, cfg.seed)
    archs = S.distinct_archs(supernet.space, sizes.trace_archs, cfg.seed)
    timed, untimed = archs[:sizes.archs], archs[sizes.archs:]
    first = timed[0].to_tensor()
    log.info("network %s, batch %d: tracing the supernet steps", net, sizes.batch)
    first_call = {name: S.timed_call(functools.partial(step, images, labels, first))
                  for name, step in (("plain", plain_step), ("di", di_step))}
    log.info("traced the plain step in %.1fs, the DI step in %.1fs", *first_call.values())
    per_arch = []
    for i, arch in enumerate(timed):
        values = arch.to_tensor()
        c_step = S.child_step(S.build_child_net(arch, net), cfg.optim.learning_rate)
        fns = {"supernet": functools.partial(plain_step, images, labels, values),
               "child": functools.partial(c_step, images, labels),
               "di": functools.partial(di_step, images, labels, values)}
        trace_s = S.timed_call(fns["child"])
        for fn in fns.values():  # The architecture's first run, untimed.
            S.timed_call(fn)
        ms = S.round_robin_medians(fns, sizes.steps)
        per_arch.append(ms)
        log.info("arch %d/%d (child traced in %.1fs): supernet %.1f ms, child %.1f ms, "
                 "DI %.1f ms", i + 1, len(timed), trace_s, ms["supernet"], ms["child"], ms["di"])
    # The tracing count: the same compiled plain step, on further architectures.
    for arch in untimed:
        S.timed_call(functools.partial(plain_step, images, labels, arch.to_tensor()))
    traces = int(plain_step.experimental_get_tracing_count())
    log.info("plain step traced %d time(s) for %d architectures", traces, len(archs))
    column = {k: np.array([ms[k] for ms in per_arch]) for k in ("supernet", "child", "di")}
    supernet_ms = float(np.median(column["supernet"]))
    over_child, over_plain = column["supernet"] / column["child"], column["di"] / column["supernet"]
    return {
        "supernet_over_child": float(np.mean(over_child)),
        "traces_for_50_archs": traces,
        "traces_archs": len(archs),
        "di_over_plain": float(np.mean(over_plain)),
        "supernet_step_ms": supernet_ms,
        "child_step_ms": float(np.median(column["child"])),
        "di_step_ms": float(np.median(column["di"])),
        # The plain step is timed once, round robin with both the child and the DI step.
        "plain_step_ms": supernet_ms,
        "di_step_traces": int(di_step.experimental_get_tracing_count()),
        "plain_trace_seconds": first_call["plain"], "di_trace_seconds": first_call["di"],
        # The spread over architectures: [min, max] of the per-architecture ratios.
        "supernet_over_child_range": [float(over_child.min()), float(over_child.max())],
        "di_over_plain_range": [float(over_plain.min()), float(over_plain.max())],
        "supernet_over_child_per_arch": over_child.tolist(),
        "di_over_plain_per_arch": over_plain.tolist(),
        "archs": [list(a.values) for a in timed],
    }


def projector_figures(sizes: Sizes, cfg) -> dict:
    """``projector_bytes`` of `sizes.projector_net` (builds variables only, traces nothing)."""
    supernet = S.build_supernet_net(sizes.projector_net, cfg.seed)
    _, di = _trainers(supernet, cfg)
    return {"projector_bytes": di.projector_bytes()}


def xla_figures(sizes: Sizes, cfg) -> dict:
    """The XLA-compiled DI step against the default one: compile time, step-time ratio and
    the largest relative difference of the weights after one step from the same start."""
    if sizes.xla_net is None:
        return {}
    net = sizes.xla_net
    images, labels = S.random_batch(net, sizes.batch, cfg.seed)
    di = dataclasses.replace(cfg.di, enabled=True)
    nets = {k: S.build_supernet_net(net, cfg.seed) for k in ("default", "xla")}
    trainers = {k: S.make_trainer(n, cfg.optim, di, jit_compile=k == "xla")
                for k, n in nets.items()}
    fns = {k: S.supernet_step(t) for k, t in trainers.items()}
    archs = S.distinct_archs(nets["xla"].space, sizes.archs, cfg.seed)
    first = archs[0].to_tensor()
    S.timed_call(functools.partial(fns["default"], images, labels, first))
    log.info("network %s: XLA-compiling the DI step (minutes on a CPU)", net)
    compile_s = S.timed_call(functools.partial(fns["xla"], images, labels, first))
    log.info("XLA-compiled the DI step in %.1fs", compile_s)
    error = max(float(np.max(np.abs(a.variable.numpy() - b.variable.numpy()))
                      / max(float(np.max(np.abs(b.variable.numpy()))), 1e-12))
                for a, b in zip(nets["xla"].banks, nets["default"].banks, strict=True))
    ratios = []
    for arch in archs:
        timed = {k: functools.partial(f, images, labels, arch.to_tensor()) for k, f in fns.items()}
        ms = S.round_robin_medians(timed, sizes.steps)
        ratios.append(ms["xla"] / ms["default"])
    return {"xla_compile_seconds": compile_s, "xla_step_over_default": float(np.mean(ratios)),
            "xla_max_rel_error": error, "xla_network": net.to_dict()}


def oracle_figures(sizes: Sizes, cfg) -> dict:
    """Oracle bookkeeping cost per trial at two run lengths, and their ratio."""
    out = {}
    for key, trials in zip(("1k", "20k"), sizes.oracle_trials, strict=True):
        with tempfile.TemporaryDirectory() as directory:
            ms = oracle_ms_per_trial(trials, directory, seed=cfg.seed)
        log.info("oracle: %.3f ms per trial at %d trials", ms, trials)
        out[f"oracle_ms_per_trial_{key}"] = ms
        out[f"oracle_trials_{key}"] = trials
    out["oracle_20k_over_1k"] = out["oracle_ms_per_trial_20k"] / out["oracle_ms_per_trial_1k"]
    return out


def environment(sizes: Sizes, quick: bool) -> dict:
    net = sizes.net
    return {
        "tensorflow": tf.__version__,
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "devices": [d.name for d in tf.config.list_logical_devices()],
        "quick": bool(quick),
        "batch": sizes.batch,
        "image_shape": list(net.image_shape),
        "num_archs": sizes.archs,
        "steps": sizes.steps,
        "network": net.to_dict(),
        "projector_network": sizes.projector_net.to_dict(),
        "sizes": sizes.to_dict(),
        # Unset: TensorFlow's default for this CPU (oneDNN on only with AVX-512 and newer).
        "tf_enable_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "cpu_avx512": _cpu_has("avx512f"),
    }


def _cpu_has(flag: str) -> bool | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return any(line.startswith("flags") and flag in line.split() for line in f)
    except OSError:
        return None


def report_lines(report: dict) -> list[str]:
    """The figures as aligned ``name value`` lines, with the target where there is one."""
    lines = []
    for key, value in report.items():
        if isinstance(value, (dict, list)):
            continue
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        spread = report.get(f"{key}_range")
        if spread:
            text += f" [{spread[0]:.3g}, {spread[1]:.3g}]"
        target = TARGETS.get(key)
        if target is not None:
            text += f"  (target {'==' if isinstance(target, int) else '<='} {target})"
        lines.append(f"{key:<30} {text}")
    return lines


def run_bench(cfg, sizes: Sizes | None = None, accelerator_sizes=None) -> dict:
    """Runs every benchmark, prints the figures, writes the JSON report; returns it.

    Args:
      cfg: a `config.Config`; reads ``bench`` (output, quick), ``optim``, ``di``, ``seed`` and
        ``output_dir``.
      sizes: what to measure; default `QUICK` or `FULL` as ``cfg.bench.quick`` says (tests
        pass smaller sizes).
      accelerator_sizes: with ``cfg.bench.accelerator``, an `accelerator.AcceleratorSizes`
        (default: the CIFAR-10 search size).
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    # A no-op when a library already configured the root logger (a bare `logging.warning`
    # at import does, at level WARNING); the progress lines must show all the same.
    log.setLevel(logging.INFO)
    if sizes is None:
        sizes = QUICK if cfg.bench.quick else FULL
    tf.keras.utils.set_random_seed(cfg.seed)
    name = "accelerator" if cfg.bench.accelerator else "bench"
    path = cfg.bench.output or os.path.join(cfg.output_dir, f"{name}.json")
    log.info("%s benchmark; report to %s", "accelerator" if cfg.bench.accelerator else
             "quick" if cfg.bench.quick else "full", path)
    report = {}
    if cfg.bench.accelerator:
        report.update(accelerator.accelerator_figures(cfg, accelerator_sizes or
                                                      accelerator.AcceleratorSizes()))
    else:
        report.update(step_figures(sizes, cfg))
        report.update(projector_figures(sizes, cfg))
        report.update(xla_figures(sizes, cfg))
        report.update(oracle_figures(sizes, cfg))
        report["targets"] = dict(TARGETS)
    report["environment"] = environment(sizes, cfg.bench.quick)
    print("\n".join(report_lines(report)), flush=True)
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_write_json(path, report)
    log.info("wrote %s", path)
    return report
