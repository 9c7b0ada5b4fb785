"""The rank-correlation study: do shared weights rank architectures as standalone training does?

1. Sample `study.archs` distinct architectures of the `nb201` space (uniformly; degenerate
   ones, whose cell output does not depend on the input because every path to node 3 passes
   through `none`, are skipped: they are chance-level under any training and would only add
   agreeing ties; `sample_archs(..., skip_degenerate=False)` keeps them).
2. Ground truth (`studies.rank_truth`): train each as a standalone child network
   (`standalone.train_child`, final training's loop) for `study.child_steps` steps on
   search-train with the search's optimiser (`cfg.optim`: SGD with momentum, weight decay,
   global gradient clipping, cosine learning rate over the budget), twice: from seeds `seed`
   and `seed + 1` (initial weights and batch order; within a seed every arch gets the same
   batches). Accuracy on search-valid in inference mode. `gt_self_tau`, the Kendall tau
   between the two seeds, is the ceiling any shared-weight estimate can reach; the methods
   are ranked against the mean of the two.
3. For each of `study.seeds` supernet seeds (`seed`, `seed + 1`, ...): train a supernet of the
   same network for `study.supernet_steps` shared-weight steps, one uniformly sampled
   architecture per step (cosine learning rate over the budget), with plain weight sharing and
   with DI (`cfg.di`, enabled whatever `--di` says): both from the seed's initial weights, on
   the seed's architectures and batches.
4. Evaluate every architecture with each set of shared weights on search-valid (batch
   statistics, as the supernet always normalises). Per method: Kendall tau and Spearman rho
   against the ground truth for each seed and their mean over seeds; `kendall_tau_ci95`, a
   bootstrap interval of that mean over architectures (resampled with replacement), and the
   paired `di_minus_plain_tau_ci95` (the same resampled architectures for both methods).
5. Write `<output_dir>/rank.json`, `rank.png` and `rank.md` (chief only, atomically) and print
   the headline figures.

The network is always nb201's: with `--space=nb201` it is sized by `space.num_cells` and
`space.filters`; with any other space (the default is enas_micro, whose `num_cells` means
nothing here) by `space.filters` and `min(space.num_cells, STUDY_NUM_CELLS)` cells per stage,
so that the children and the supernets train in minutes on a CPU. `--quick` (a smoke run)
trains a few architectures for a few steps with 2 supernet seeds.

DI's projectors are reset as `di.reset` says, in supernet steps (`epoch`: one pass over
search-train). With `study.jobs` above 1 (0 = `studies.parallel.default_jobs`: 2 on a 2-core
machine without GPUs) the children of step 2 train in `jobs - 1` worker processes while the
supernets of step 3 train in this one. Must not read flags or import the CLI.
"""

from __future__ import annotations

import dataclasses
import time
import warnings

import numpy as np
from tqdm.auto import tqdm  # a widget in Jupyter, a text bar elsewhere

from di_nas.search_space import get_space
from di_nas.search_space.nb201 import is_degenerate
from di_nas.studies import disturbance, parallel, rank_truth, stats
from di_nas.studies.rank_truth import GT_SEEDS
from di_nas.supernet import build_supernet
from di_nas.training import progress
from di_nas.training.loops import SharedLoop
from di_nas.training.shared_step import SharedWeightTrainer

SPACE = "nb201"
STUDY_NUM_CELLS = 1  # Cells per stage when --space is not nb201.
METHODS = ("plain", "di")

__all__ = ["run_rank_study", "rank_correlation", "sample_archs", "is_degenerate",
           "study_space_config", "reset_period", "tau_summary", "quick_config"]


def rank_correlation(x, y) -> dict[str, float]:
    """Kendall tau (tau-b, ties allowed) and Spearman rho of two score lists, with p-values.

    NaN where undefined (fewer than two values, or a constant list).
    """
    from scipy import stats as scipy_stats

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) != len(y):
        raise ValueError(f"score lists differ in length: {len(x)} and {len(y)}")
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        nan = float("nan")
        return {"kendall_tau": nan, "kendall_p": nan, "spearman_rho": nan, "spearman_p": nan}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tau = scipy_stats.kendalltau(x, y)
        rho = scipy_stats.spearmanr(x, y)
    return {"kendall_tau": float(tau.statistic), "kendall_p": float(tau.pvalue),
            "spearman_rho": float(rho.statistic), "spearman_p": float(rho.pvalue)}


def _mean_tau(shared, truth) -> float:
    """Mean over seeds (columns of `shared`, [archs, seeds]) of Kendall tau against `truth`."""
    taus = [stats.kendall_tau(shared[:, s], truth) for s in range(shared.shape[1])]
    return float(np.nanmean(taus)) if np.isfinite(taus).any() else float("nan")


def tau_summary(shared: dict, gt_runs, resamples: int = 1000) -> dict:
    """Taus, rhos and bootstrap intervals of each method against the mean ground truth.

    Args:
        shared: method -> shared-weight accuracies, [archs, seeds].
        gt_runs: standalone accuracies, [GT seeds, archs] (at least two runs).
        resamples: bootstrap resamples (architectures drawn with replacement).
    """
    gt_runs = np.asarray(gt_runs, np.float64)
    truth = gt_runs.mean(axis=0)
    out = {"gt_self_tau": rank_correlation(gt_runs[0], gt_runs[1])["kendall_tau"],
           "gt_self_tau_ci95": stats.paired_statistic_ci(
               stats.kendall_tau, gt_runs[0], gt_runs[1], resamples=resamples)}
    for method, acc in shared.items():
        acc = np.asarray(acc, np.float64)
        per_seed = [rank_correlation(acc[:, s], truth) for s in range(acc.shape[1])]
        out[method] = {
            "kendall_tau": _mean_tau(acc, truth),
            "spearman_rho": float(np.nanmean([c["spearman_rho"] for c in per_seed])),
            "kendall_tau_per_seed": [c["kendall_tau"] for c in per_seed],
            "kendall_tau_ci95": stats.paired_statistic_ci(_mean_tau, acc, truth,
                                                          resamples=resamples),
            "mean_acc": float(acc.mean())}
    if set(METHODS) <= set(shared):
        both = np.stack([np.asarray(shared[m], np.float64) for m in METHODS], axis=-1)
        diff = lambda a, b: _mean_tau(a[..., 1], b) - _mean_tau(a[..., 0], b)  # noqa: E731
        out["di_minus_plain_tau"] = diff(both, truth)
        out["di_minus_plain_tau_ci95"] = stats.paired_statistic_ci(diff, both, truth,
                                                                   resamples=resamples)
    return out


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


def quick_config(cfg):
    """`cfg` shrunk to a smoke run: 4 archs, 10 child and 20 supernet steps, 2 seeds."""
    s = cfg.study
    return cfg.replace(study={"archs": min(s.archs, 4), "child_steps": min(s.child_steps, 10),
                              "supernet_steps": min(s.supernet_steps, 20),
                              "seeds": min(s.seeds, 2)})


# Training --------------------------------------------------------------------------------------

def train_supernet(loop, cfg, source, space, steps: int, reset_every: int | None,
                   desc: str) -> float:
    """`steps` shared-weight steps of `loop` (a `SharedLoop`) on uniformly sampled
    architectures (cosine learning rate over `trainer.total_steps`); the architectures and
    batches depend only on `cfg.seed`, so every method sees the same ones. Returns the mean
    training loss of the last tenth."""
    from di_nas.data import make_dataset

    batches = make_dataset(source, "train", cfg.data.batch_size, training=True, cfg=cfg.data,
                           seed=cfg.seed).as_numpy_iterator()
    rng = np.random.default_rng([cfg.seed, 1])
    trainer, losses = loop.trainer, []
    for step in tqdm(range(steps), desc=desc, unit="step", mininterval=2.0):
        if reset_every and step and step % reset_every == 0 and trainer.projectors:
            trainer.reset_projectors()
        losses += disturbance.train_arch(loop, space.sample(rng), batches, 1)
    return float(np.mean(losses[-max(1, steps // 10):]))


def shared_accuracies(cfg, source, archs, space_cfg, eval_batches, every) -> dict:
    """Per method: shared-weight accuracies [archs, seeds], final training losses and seconds.

    One supernet and one pair of compiled loops serve every seed: each seed starts from the
    initial weights of a supernet built with that seed (zero momentum, P = I).
    """
    study, space = cfg.study, get_space(SPACE)
    di_cfg = dataclasses.replace(cfg.di, enabled=True)

    def build(seed):
        return build_supernet(SPACE, source.num_classes, source.image_shape, space_cfg, seed)

    supernet = build(cfg.seed)
    trainers = {"plain": SharedWeightTrainer(supernet, cfg.optim, None, study.supernet_steps),
                "di": SharedWeightTrainer(supernet, cfg.optim, di_cfg, study.supernet_steps)}
    plain_loop = SharedLoop(trainers["plain"])
    loops = {"plain": plain_loop,
             "di": SharedLoop(trainers["di"], evaluator=plain_loop.eval_batch)}
    zero = disturbance.snapshot(trainers["plain"])
    out = {m: {"acc": [], "train_loss": [], "seconds": 0.0} for m in METHODS}
    for s in range(study.seeds):
        seed = cfg.seed + s
        initial = {**zero, "weights": [v.numpy() for v in build(seed).weights], "projectors": {}}
        for method in METHODS:
            t = time.time()
            disturbance.restore(trainers[method], initial)
            out[method]["train_loss"].append(train_supernet(
                loops[method], cfg.replace(seed=seed), source, space, study.supernet_steps,
                every if method == "di" else None, f"rank supernet {method} seed {seed}"))
            out[method]["acc"].append([disturbance.evaluate_arch(loops[method], a,
                                                                 eval_batches)["accuracy"]
                                       for a in archs])
            out[method]["seconds"] += time.time() - t
    for method in METHODS:
        out[method]["acc"] = np.asarray(out[method]["acc"]).T  # [archs, seeds]
    return out


# The study -------------------------------------------------------------------------------------

def run_rank_study(cfg, source) -> dict:
    """Runs the rank-correlation study (see the module docstring); returns what `rank.json`
    holds (NaN where `rank.json` has null)."""
    from di_nas import distribute
    from di_nas.studies import rank_report

    cfg = cfg.replace(study={"child_steps": cfg.study.child_budget()})
    cfg = quick_config(cfg) if cfg.bench.quick else cfg
    start, study = time.time(), cfg.study
    space_cfg = study_space_config(cfg.space)
    every = reset_period(cfg.di, source.size("train"), cfg.data.batch_size)
    archs, skipped = sample_archs(get_space(SPACE), study.archs, np.random.default_rng(cfg.seed))
    strategy = distribute.get_strategy(cfg.distribute)
    jobs = parallel.study_jobs(cfg)
    with strategy.scope():
        evaluation = rank_truth.evaluation(cfg, source, strategy)
        eval_batches, labels = evaluation["batches"], evaluation["labels"]
        t = time.time()
        # With jobs > 1 the children train in jobs - 1 worker processes while the supernets
        # train here; else one after the other, the children first.
        with rank_truth.start(cfg, archs, space_cfg, jobs - 1) as children:
            if jobs > 1:
                progress.log(f"rank: {GT_SEEDS * len(archs)} children in {jobs - 1} worker "
                             f"process(es) (logs in {cfg.output_dir}/runs/), the supernets here")
                shared = shared_accuracies(cfg, source, archs, space_cfg, eval_batches, every)
            gt = rank_truth.collect(children, archs, study.child_steps)
            timings = {"children": time.time() - t}
            if jobs <= 1:
                progress.log(f"rank: ground truth trained ({timings['children']:.0f}s); "
                             "supernets next")
                shared = shared_accuracies(cfg, source, archs, space_cfg, eval_batches, every)
    gt_acc = np.array([[r["accuracy"] for r in run] for run in gt])
    summary = tau_summary({m: shared[m]["acc"] for m in METHODS}, gt_acc)
    for method in METHODS:
        summary[method]["final_train_loss"] = float(np.mean(shared[method]["train_loss"]))
        timings[method] = shared[method]["seconds"]
    result = {
        **summary, "archs": len(archs), "dataset": source.name, "seed": cfg.seed,
        "seeds": study.seeds, "gt_seeds": GT_SEEDS, "child_steps": study.child_steps,
        "supernet_steps": study.supernet_steps, "quick": cfg.bench.quick,
        "space": dataclasses.asdict(space_cfg), "optim": dataclasses.asdict(cfg.optim),
        "di_config": dataclasses.asdict(dataclasses.replace(cfg.di, enabled=True)),
        "di_reset_steps": every, "skipped_degenerate": skipped,
        "eval_examples": int(len(labels)), "standalone_mean_acc": float(gt_acc.mean()),
        "per_arch": rank_report.per_arch_rows(archs, gt, gt_acc, shared, METHODS),
        "timings": timings, "seconds": time.time() - start, "jobs": jobs,
    }
    if distribute.is_chief(strategy):
        rank_report.write_outputs(result, cfg.output_dir)
    rank_report.print_headline(result, cfg.output_dir)
    return result
