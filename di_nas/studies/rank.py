"""The rank-correlation study: do shared weights rank architectures as standalone training does?

1. Sample `study.archs` distinct architectures of the `nb201` space (uniformly; degenerate
   ones, whose cell output does not depend on the input because every path to node 3 passes
   through `none`, are skipped: they are chance-level under any training and would only add
   agreeing ties; `sample_archs(..., skip_degenerate=False)` keeps them).
2. Ground truth: train each as a standalone child network (`di_nas.child.build_child`) from the
   same initial seed for `study.child_steps` steps on search-train, with the same batches for
   every arch and the search's optimiser (`cfg.optim`: SGD with momentum, weight decay, global
   gradient clipping, cosine learning rate from `learning_rate` to `learning_rate_min` over
   the budget); accuracy on search-valid in inference mode (batch norm moving statistics).
3. Train a supernet of the same network for `study.supernet_steps` shared-weight steps, one
   uniformly sampled architecture of the whole space per step (the same architectures and
   batches, cosine learning rate over the budget), with plain weight sharing and with DI
   (`cfg.di`, enabled whatever `--di` says), both from identical initial weights.
4. Evaluate every sampled architecture with each set of shared weights on search-valid (batch
   statistics, as the supernet always normalises); Kendall tau and Spearman rho
   (`scipy.stats`) between shared-weight and standalone accuracy, per method.
5. Write `<output_dir>/rank.json`, `rank.png` and `rank.md` (chief only, atomically) and print
   the headline figures.

The network is always nb201's: with `--space=nb201` it is sized by `space.num_cells` and
`space.filters`; with any other space (the default is enas_micro, whose `num_cells` means
nothing here) by `space.filters` and `min(space.num_cells, STUDY_NUM_CELLS)` cells per stage,
so that twelve children and two supernets train in minutes on a CPU.

DI's projectors are reset as `di.reset` says, read in supernet steps: `never`; `epoch`, every
pass over search-train (`num_train // batch_size` steps); or every N steps.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import warnings

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from di_nas.io import atomic_write_text
from di_nas.studies import disturbance
from di_nas.search_space import get_space
from di_nas.search_space.nb201 import is_degenerate
from di_nas.studies.pd import MAX_EVAL_EXAMPLES, valid_batches
from di_nas.supernet import build_supernet
from di_nas.training.shared_step import SharedWeightTrainer

SPACE = "nb201"
STUDY_NUM_CELLS = 1  # Cells per stage when --space is not nb201.
CHILD_STEPS_PER_CALL = 25  # Child steps per compiled call (one progress update).
METHODS = ("plain", "di")

__all__ = ["run_rank_study", "rank_correlation", "sample_archs", "is_degenerate",
           "study_space_config", "reset_period", "MAX_EVAL_EXAMPLES"]


# Pure helpers ----------------------------------------------------------------------------------

def rank_correlation(x, y) -> dict[str, float]:
    """Kendall tau (tau-b, ties allowed) and Spearman rho of two score lists, with p-values.

    NaN where undefined (fewer than two values, or a constant list).
    """
    from scipy import stats

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) != len(y):
        raise ValueError(f"score lists differ in length: {len(x)} and {len(y)}")
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        nan = float("nan")
        return {"kendall_tau": nan, "kendall_p": nan, "spearman_rho": nan, "spearman_p": nan}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tau = stats.kendalltau(x, y)
        rho = stats.spearmanr(x, y)
    return {"kendall_tau": float(tau.statistic), "kendall_p": float(tau.pvalue),
            "spearman_rho": float(rho.statistic), "spearman_p": float(rho.pvalue)}


def sample_archs(space, num_archs: int, rng: np.random.Generator, skip_degenerate: bool = True,
                 max_tries: int = 100000) -> tuple[list, int]:
    """`num_archs` distinct uniformly sampled architectures and how many degenerate draws were
    skipped."""
    archs, seen, skipped = [], set(), 0
    for _ in range(max_tries):
        if len(archs) == num_archs:
            break
        arch = space.sample(rng)
        if arch.values in seen:
            continue
        if skip_degenerate and is_degenerate(arch.values):
            skipped += 1
            continue
        seen.add(arch.values)
        archs.append(arch)
    if len(archs) < num_archs:
        raise RuntimeError(f"found only {len(archs)} of {num_archs} distinct architectures")
    return archs, skipped


def study_space_config(space_cfg):
    """The nb201 network this study trains (see the module docstring)."""
    if space_cfg.name == SPACE:
        return space_cfg
    return dataclasses.replace(space_cfg, name=SPACE,
                               num_cells=min(space_cfg.num_cells, STUDY_NUM_CELLS))


def reset_period(di_cfg, num_train: int, batch_size: int) -> int | None:
    """Supernet steps between projector resets (None: never)."""
    if di_cfg.reset == "never":
        return None
    if di_cfg.reset == "epoch":
        return max(1, num_train // batch_size)
    return di_cfg.reset_steps


# Training --------------------------------------------------------------------------------------

def _child_config(cfg, space_cfg):
    """`cfg` whose `final` section trains a child with the search optimiser (`cfg.optim`)."""
    o = cfg.optim
    return cfg.replace(final={
        "batch_size": cfg.data.batch_size, "learning_rate": o.learning_rate,
        "learning_rate_min": o.learning_rate_min, "momentum": o.momentum,
        "weight_decay": o.weight_decay, "grad_clip_norm": o.grad_clip_norm,
        "label_smoothing": 0.0, "auxiliary_weight": 0.0, "drop_path": 0.0,
        "num_layers": space_cfg.num_cells, "filters": space_cfg.filters})


def train_child(cfg, source, arch, space_cfg, eval_ds, steps: int, bar=None) -> dict:
    """Trains `arch` standalone for `steps` steps (inside the strategy's scope); returns
    `{'accuracy', 'loss'}` on `eval_ds`, the mean training loss of the last steps and the
    parameter count."""
    import keras

    from di_nas import child as child_lib
    from di_nas import distribute
    from di_nas.data import make_dataset
    from di_nas.training import final

    strategy = tf.distribute.get_strategy()
    ccfg = _child_config(cfg, space_cfg)
    o = cfg.optim
    keras.utils.set_random_seed(cfg.seed)  # Every child starts from the same seed.
    model = child_lib.build_child(arch, source.num_classes, source.image_shape,
                                  num_layers=space_cfg.num_cells, filters=space_cfg.filters,
                                  name="rank_child")
    schedule = keras.optimizers.schedules.CosineDecay(
        o.learning_rate, decay_steps=steps, alpha=o.learning_rate_min / o.learning_rate)
    optimizer = keras.optimizers.SGD(learning_rate=schedule, momentum=o.momentum,
                                     nesterov=o.nesterov)
    optimizer.build(model.trainable_variables)
    loop = final.make_train_loop(model, optimizer, ccfg, source.num_classes)
    ds = make_dataset(source, "train", cfg.data.batch_size, training=True, cfg=cfg.data,
                      seed=cfg.seed)
    iterator = iter(distribute.distribute_dataset(strategy, ds))
    done, out = 0, {}
    while done < steps:
        n = min(CHILD_STEPS_PER_CALL, steps - done)
        out = loop.train(iterator, tf.constant(n))
        done += n
        if bar is not None:
            bar.update(n)
    result = loop.evaluate(eval_ds)
    result["train_loss"] = float(out["loss"]) / max(float(out["count"]), 1.0)
    result["params"] = final.count_params(model)
    return result


def train_supernet(trainer, cfg, source, space, steps: int, reset_every: int | None,
                   desc: str) -> float:
    """`steps` shared-weight steps on uniformly sampled architectures (cosine learning rate
    over `trainer.total_steps`); the architectures and batches depend only on `cfg.seed`, so
    every method sees the same ones. Returns the mean training loss of the last tenth."""
    from di_nas.data import make_dataset

    batches = make_dataset(source, "train", cfg.data.batch_size, training=True, cfg=cfg.data,
                           seed=cfg.seed).as_numpy_iterator()
    rng = np.random.default_rng([cfg.seed, 1])
    losses = []
    for step in tqdm(range(steps), desc=desc, unit="step", mininterval=2.0):
        if reset_every and step and step % reset_every == 0 and trainer.projectors:
            trainer.reset_projectors()
        losses += disturbance.train_arch(trainer, space.sample(rng), batches, 1)
    return float(np.mean(losses[-max(1, steps // 10):]))


# The study -------------------------------------------------------------------------------------

def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def run_rank_study(cfg, source) -> dict:
    """Runs the rank-correlation study (see the module docstring); returns what `rank.json`
    holds (NaN where `rank.json` has null)."""
    from di_nas import distribute

    start = time.time()
    study = cfg.study
    space_cfg = study_space_config(cfg.space)
    space = get_space(SPACE)
    di_cfg = dataclasses.replace(cfg.di, enabled=True)
    every = reset_period(di_cfg, source.size("train"), cfg.data.batch_size)
    archs, skipped = sample_archs(space, study.archs, np.random.default_rng(cfg.seed))
    strategy = distribute.get_strategy(cfg.distribute)
    timings = {}
    with strategy.scope():
        eval_batches = valid_batches(cfg, source, strategy.num_replicas_in_sync)
        images = np.concatenate([b[0] for b in eval_batches])
        labels = np.concatenate([b[1] for b in eval_batches])
        eval_ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(
            cfg.data.eval_batch_size)

        t = time.time()
        standalone = []
        with tqdm(total=len(archs) * study.child_steps, desc="rank children", unit="step",
                  mininterval=2.0) as bar:
            for arch in archs:
                standalone.append(train_child(cfg, source, arch, space_cfg, eval_ds,
                                              study.child_steps, bar))
        timings["children"] = time.time() - t

        supernet = build_supernet(SPACE, source.num_classes, source.image_shape, space_cfg,
                                  seed=cfg.seed)
        trainers = {"plain": SharedWeightTrainer(supernet, cfg.optim, None, study.supernet_steps),
                    "di": SharedWeightTrainer(supernet, cfg.optim, di_cfg, study.supernet_steps)}
        initial = disturbance.snapshot(trainers["plain"])
        shared, train_loss = {}, {}
        for method in METHODS:
            t = time.time()
            trainer = trainers[method]
            disturbance.restore(trainer, initial)  # Identical weights, zero momentum, P = I.
            train_loss[method] = train_supernet(trainer, cfg, source, space,
                                                study.supernet_steps,
                                                every if method == "di" else None,
                                                f"rank supernet ({method})")
            shared[method] = [disturbance.evaluate_arch(trainer, a, eval_batches)
                              for a in archs]
            timings[method] = time.time() - t
    truth = [s["accuracy"] for s in standalone]
    summary = {}
    for method in METHODS:
        acc = [s["accuracy"] for s in shared[method]]
        summary[method] = {**rank_correlation(acc, truth),
                           "mean_acc": float(np.mean(acc)),
                           "final_train_loss": train_loss[method]}
    per_arch = []
    for i, arch in enumerate(archs):
        per_arch.append({
            "values": list(arch.values), "readable": str(arch),
            "standalone_acc": truth[i], "standalone_loss": standalone[i]["loss"],
            "standalone_train_loss": standalone[i]["train_loss"],
            "params": standalone[i]["params"],
            **{f"{m}_acc": shared[m][i]["accuracy"] for m in METHODS},
            **{f"{m}_loss": shared[m][i]["loss"] for m in METHODS},
        })
    result = {
        **summary,
        "archs": len(archs),
        "dataset": source.name,
        "seed": cfg.seed,
        "child_steps": study.child_steps,
        "supernet_steps": study.supernet_steps,
        "space": dataclasses.asdict(space_cfg),
        "optim": dataclasses.asdict(cfg.optim),
        "di_config": dataclasses.asdict(di_cfg),
        "di_reset_steps": every,
        "skipped_degenerate": skipped,
        "eval_examples": int(len(labels)),
        "standalone_mean_acc": float(np.mean(truth)),
        "per_arch": per_arch,
        "timings": timings,
        "seconds": time.time() - start,
    }
    if distribute.is_chief(strategy):
        write_outputs(result, cfg.output_dir)
    print_headline(result, cfg.output_dir)
    return result


# Outputs ---------------------------------------------------------------------------------------

def write_outputs(result: dict, output_dir: str) -> None:
    """`rank.json` (NaN written as null), `rank.png` and `rank.md` under `output_dir`, each
    written atomically."""
    import json

    from di_nas.studies import plots

    tf.io.gfile.makedirs(output_dir)
    atomic_write_text(os.path.join(output_dir, "rank.json"),
                json.dumps(_json_safe(result), indent=2) + "\n")
    plots.plot_rank(result, os.path.join(output_dir, "rank.png"))
    atomic_write_text(os.path.join(output_dir, "rank.md"), markdown(result))


def markdown(result: dict) -> str:
    """A short report: the correlations, the per-arch table and how they were measured."""
    di = result["di_config"]
    reset = result["di_reset_steps"]
    lines = [
        f"# Rank correlation on {result['dataset']}",
        "",
        f"{result['archs']} distinct nb201 architectures ({result['space']['num_cells']} "
        f"cell(s) per stage, {result['space']['filters']} filters): each trained standalone "
        f"for {result['child_steps']} steps (ground truth), and a supernet trained "
        f"{result['supernet_steps']} steps on uniformly sampled architectures with plain and "
        f"DI weight sharing from the same initial weights. Accuracy on "
        f"{result['eval_examples']} search-valid examples.",
        "",
        "| method | Kendall tau | Spearman rho | mean shared-weight acc |",
        "|---|---|---|---|",
    ]
    for method in METHODS:
        s = result[method]
        lines.append(f"| {method} | {s['kendall_tau']:.3f} | {s['spearman_rho']:.3f} "
                     f"| {s['mean_acc']:.4f} |")
    lines += ["", "| architecture | standalone acc | plain acc | DI acc |", "|---|---|---|---|"]
    for row in sorted(result["per_arch"], key=lambda r: -r["standalone_acc"]):
        readable = row["readable"].replace("|", "\\|")  # A literal pipe in a table cell.
        lines.append(f"| `{readable}` | {row['standalone_acc']:.4f} "
                     f"| {row['plain_acc']:.4f} | {row['di_acc']:.4f} |")
    lines += [
        "",
        f"Standalone accuracy: inference mode (moving batch-norm statistics); shared-weight "
        f"accuracy: batch statistics. Degenerate architectures (cell output independent of "
        f"the input) are not sampled ({result['skipped_degenerate']} draw(s) skipped). "
        f"DI: beta={di['beta']}, scale_beta={di['scale_beta']}, P reset "
        + (f"every {reset} steps" if reset else "never")
        + f" (di.reset={di['reset']}). Seed {result['seed']}, {result['seconds']:.0f}s.",
        "",
        "![standalone vs shared-weight accuracy](rank.png)",
        "",
    ]
    return "\n".join(lines)


def print_headline(result: dict, output_dir: str) -> None:
    for method in METHODS:
        s = result[method]
        print(f"rank {method:5s}: Kendall tau {s['kendall_tau']:.3f}, Spearman rho "
              f"{s['spearman_rho']:.3f} (mean shared-weight acc {s['mean_acc']:.4f}, "
              f"standalone {result['standalone_mean_acc']:.4f})", flush=True)
    print(f"rank: {result['archs']} archs, {result['child_steps']} child steps, "
          f"{result['supernet_steps']} supernet steps in {result['seconds']:.0f}s; "
          f"wrote {os.path.join(output_dir, 'rank.json')}", flush=True)
