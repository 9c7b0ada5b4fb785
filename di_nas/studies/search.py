"""The search study: does the search find better architectures than uniform random sampling?

1. For `study.seeds` seeds (`seed`, `seed + 1`, ...), run a short search
   (`training.search.run_search`, the function `di-nas-search` calls, with `cfg.search` as given
   but `study.search_epochs` epochs, default 10 of the search's 15) three ways over the same
   supernet configuration: `di` (DI on, REINFORCE controller), `plain` (DI off) and `random_ws`
   (DI as `--di` says, keras_tuner's random oracle instead of the controller). Each run has its
   own directory under `<output_dir>/runs/`; a finished one is reported, not redone, so an
   interrupted study resumes.
2. Sample `study.random_archs` architectures of the same space uniformly (`seed`).
3. Train every found and every random architecture as a standalone child
   (`standalone.train_child`, final training's loop) with one fixed budget: `study.child_steps`
   steps on the whole training split (search-train + search-valid) with `cfg.final`'s optimiser
   and network size, all from the same initial seed and batches. Score each on the TEST split,
   which no search step reads (search rewards and the choice of the best candidate use
   search-valid only).
4. Train the random architectures again from a second seed (`seed + 1`: other initial weights
   and batches) and report `random_archs.self_tau`, the Kendall tau between the two seeds'
   accuracies, with a bootstrap interval: whether the child budget separates architectures at
   all (near 1) or their differences are training noise (near 0). A study whose budget
   cannot rank random architectures cannot show a search beating them.
5. Per method: mean and std of its found architectures' test accuracy, their mean percentile
   among the random ones (first seed), and the mean search time. Write `search.json`,
   `search.png` and `search.md` (chief only, atomically; `studies.search_report`).

The searches (longest first: DI, random sampling, plain), with the random architectures'
children queued behind them to fill the workers the last searches leave idle, and then the
found architectures' children, run `study.jobs` at a time in worker processes
(`studies.parallel`; 0 = one per CPU core up to 4 without GPUs, else one at a time here), each
task's output in `<output_dir>/runs/*.log`. Every task is seeded on its own (initial weights,
batches), wherever it runs; accuracies can still differ by a few test images between runs, as
TensorFlow's CPU kernels are not bitwise deterministic without `--deterministic`.

`--quick` (a smoke run) shortens every search to one epoch of a few steps and every child to a
few steps, with at most 2 seeds and 3 random architectures.

Must not read flags or import the CLI.
"""

from __future__ import annotations

import os
import time

import numpy as np
from tqdm.auto import tqdm  # a widget in Jupyter, a text bar elsewhere

from di_nas.studies import parallel, search_report, standalone
from di_nas.studies.search_report import METHODS
from di_nas.training import progress

OVERRIDES = {"di": {"di": {"enabled": True}},
             "plain": {"di": {"enabled": False}},
             "random_ws": {"controller": {"name": "random"}}}

__all__ = ["run_search_study", "percentile", "summarise", "seed_agreement", "quick_config",
           "METHODS"]


# Pure helpers ----------------------------------------------------------------------------------

def percentile(value: float, population) -> float:
    """Percent of `population` below `value`, ties counting half (0..100)."""
    population = np.asarray(population, np.float64)
    if population.size == 0:
        return float("nan")
    below = np.sum(population < value) + 0.5 * np.sum(population == value)
    return float(100.0 * below / population.size)


def summarise(found: dict, random_accs) -> dict:
    """Per-method `{acc_mean, acc_std, percentile_mean, ...}` and the random archs' summary.

    Args:
        found: method -> list of per-seed rows, each with `accuracy` and `search_seconds`.
        random_accs: test accuracies of the random architectures.
    """
    out = {}
    for method, rows in found.items():
        acc = np.array([r["accuracy"] for r in rows], np.float64)
        pct = [percentile(a, random_accs) for a in acc]
        out[method] = {"acc_mean": float(acc.mean()), "acc_std": float(acc.std(ddof=0)),
                       "percentile_mean": float(np.mean(pct)), "percentiles": pct,
                       "accs": acc.tolist(),
                       "search_seconds_mean": float(np.mean([r["search_seconds"]
                                                             for r in rows]))}
    random_accs = np.asarray(random_accs, np.float64)
    out["random_archs"] = {"acc_mean": float(random_accs.mean()),
                           "acc_std": float(random_accs.std(ddof=0)),
                           "acc_median": float(np.median(random_accs)),
                           "acc_min": float(random_accs.min()),
                           "acc_max": float(random_accs.max()), "accs": random_accs.tolist()}
    return out


def seed_agreement(first, second) -> dict:
    """How well a child budget separates architectures: the Kendall tau between their test
    accuracies from two training seeds (`self_tau`, NaN when either list is constant), its
    bootstrap interval over architectures, and the training noise of one accuracy
    (`seed_noise_std`, the std of the two seeds' difference over sqrt 2)."""
    from di_nas.studies import stats

    first, second = np.asarray(first, np.float64), np.asarray(second, np.float64)
    return {"self_tau": stats.kendall_tau(first, second),
            "self_tau_ci95": stats.paired_statistic_ci(stats.kendall_tau, first, second,
                                                       resamples=1000),
            "seed_noise_std": float(np.std(first - second) / np.sqrt(2.0)),
            "accs_second_seed": second.tolist()}


def quick_config(cfg):
    """`cfg` shrunk to a smoke run (see the module docstring)."""
    study = cfg.study
    return cfg.replace(
        search={"epochs": 1, "steps_per_epoch": 3, "num_candidates": 4, "log_every": 3},
        controller={"steps_per_epoch": 2, "aggregate": 2},
        study={"seeds": min(study.seeds, 2), "random_archs": min(study.random_archs, 3),
               "child_steps": min(study.child_steps, 5)})


# The study -------------------------------------------------------------------------------------

def _run_one(cfg, method: str, seed: int) -> dict:
    """One search: `{values, readable, search_valid_accuracy, search_seconds}`."""
    from di_nas.training.search import run_search

    run_cfg = cfg.replace(seed=seed, output_dir=_run_dir(cfg, method, seed), **OVERRIDES[method])
    start = time.time()
    result = run_search(run_cfg)
    seconds = result.get("search_seconds", time.time() - start)
    best = result["best"]
    return {"seed": seed, "values": [int(v) for v in best["values"]],
            "readable": best["readable"], "search_valid_accuracy": best["accuracy"],
            "search_seconds": float(seconds), "output_dir": run_cfg.output_dir,
            "final_reward_mean": result.get("final_reward_mean")}


def _run_dir(cfg, method: str, seed: int) -> str:
    return os.path.join(cfg.output_dir, "runs", f"{method}_seed{seed}")


def _child_context(cfg, source=None) -> dict:
    """`standalone.process_context` with the test set every child is scored on."""
    ctx = standalone.process_context(cfg, source)
    if "test" not in ctx:
        with ctx["strategy"].scope():
            ctx["test"] = standalone.eval_dataset(cfg, ctx["source"], "test")
    return ctx


def _train_child(cfg, values: tuple, seed: int) -> dict:
    """Test accuracy (and loss, params) of the child `values` trained from `seed`."""
    from di_nas.search_space import get_space

    ctx = _child_context(cfg)
    arch = get_space(cfg.space.name).architecture(list(values))
    with ctx["strategy"].scope():
        return standalone.train_child(cfg, ctx["source"], arch, cfg.study.child_steps,
                                      ctx["test"], split="train_full", seed=seed)


def _task(kind: str, *args):
    """A pooled task of the study (a module-level function, so a worker can run it): a search
    (`_run_one`) or a child training (`_train_child`)."""
    return _run_one(*args) if kind == "search" else _train_child(*args)


def _child_log(cfg, i: int) -> str:
    return os.path.join(cfg.output_dir, "runs", f"child_{i:02d}.log")


def _run_pooled(cfg, searches: list[tuple], children: list[tuple], jobs: int, bar,
                first_log: int = 0) -> tuple[list, list]:
    """Runs `searches` (`(method, seed)`, in order) and then `children` (`(values, seed)`) as
    one queue, `jobs` at a time: the children fill the workers the last searches leave idle.
    Returns the searches' rows and the children's results, each in order."""
    tasks = ([("search", cfg, m, s) for m, s in searches]
             + [("child", cfg, v, s) for v, s in children])
    logs = ([f"{_run_dir(cfg, m, s)}.log" for m, s in searches]
            + [_child_log(cfg, first_log + i) for i in range(len(children))])
    n, finished = len(searches), []

    def done(i, row):
        if i >= n:
            bar.update(cfg.study.child_steps)
            return
        finished.append(i)
        progress.log(f"search study: {len(finished)}/{n} searches done ({searches[i][0]}, "
                     f"seed {row['seed']}: best search-valid "
                     f"{row['search_valid_accuracy']:.4f}, {row['search_seconds']:.0f}s)")

    os.makedirs(os.path.join(cfg.output_dir, "runs"), exist_ok=True)
    with parallel.Tasks(_task, tasks, jobs if jobs > 1 else 0, logs) as running:
        rows = running.results(done)
    return rows[:n], rows[n:]


# Longest first, so that the shortest searches end the queue: DI's step costs most, then random
# sampling (rewards computed for every trial), then plain.
SEARCH_ORDER = ("di", "random_ws", "plain")


def _train_all(cfg, randoms: list, jobs: int) -> tuple[dict, dict, dict]:
    """Every search, and every child: the random architectures from two seeds (queued behind
    the searches), then the found architectures not already trained. Returns the per-method
    search rows, the children's results by `(values, seed)` and the phases' seconds."""
    searches = [(m, cfg.seed + i) for m in SEARCH_ORDER for i in range(cfg.study.seeds)]
    random_runs = list(dict.fromkeys((tuple(a.values), cfg.seed + k)
                                     for k in (0, 1) for a in randoms))
    progress.log(f"search study: {len(searches)} searches of {cfg.search.epochs} epochs, then "
                 f"the {len(randoms)} random architectures' children (from seeds {cfg.seed} and "
                 f"{cfg.seed + 1}), {jobs} task(s) at a time; each task's output in "
                 f"{os.path.join(cfg.output_dir, 'runs')}")
    steps, start = cfg.study.child_steps, time.time()
    with tqdm(total=len(random_runs) * steps, desc="search study children", unit="step",
              mininterval=2.0) as bar:
        rows, trained = _run_pooled(cfg, searches, random_runs, jobs, bar)
        children = dict(zip(random_runs, trained, strict=True))
        pooled = time.time() - start
        found_runs = list(dict.fromkeys((tuple(r["values"]), cfg.seed) for r in rows))
        found_runs = [run for run in found_runs if run not in children]
        bar.total += len(found_runs) * steps
        bar.refresh()
        _, trained = _run_pooled(cfg, [], found_runs, jobs, bar, first_log=len(random_runs))
        children.update(zip(found_runs, trained, strict=True))
    found = {m: [] for m in METHODS}
    for (method, _), row in zip(searches, rows, strict=True):
        child = children[(tuple(row["values"]), cfg.seed)]
        found[method].append({**row, "accuracy": child["accuracy"], "test_loss": child["loss"],
                              "params": child["params"]})
    return found, children, {"pooled_seconds": pooled,
                             "child_seconds": time.time() - start - pooled}


def run_search_study(cfg, source) -> dict:
    """Runs the search study (see the module docstring); returns what `search.json` holds."""
    from di_nas import distribute
    from di_nas.search_space import get_space

    cfg = cfg.replace(study={"child_steps": cfg.study.child_budget()},
                      search={"epochs": cfg.study.search_budget()})
    cfg = quick_config(cfg) if cfg.bench.quick else cfg
    jobs = parallel.study_jobs(cfg)
    start = time.time()
    _child_context(cfg, source)
    rng = np.random.default_rng([cfg.seed, 2])
    randoms = [get_space(cfg.space.name).sample(rng) for _ in range(cfg.study.random_archs)]
    found, children, seconds = _train_all(cfg, randoms, jobs)
    random_rows = []
    for a in randoms:
        first, again = (children[(tuple(a.values), cfg.seed + k)] for k in (0, 1))
        random_rows.append({"values": list(a.values), "readable": str(a),
                            "accuracy": first["accuracy"],
                            "accuracy_second_seed": again["accuracy"],
                            "params": first["params"]})
    first = [r["accuracy"] for r in random_rows]
    summary = summarise(found, first)
    summary["random_archs"].update(
        seed_agreement(first, [r["accuracy_second_seed"] for r in random_rows]))
    result = {
        **summary,
        "seeds": cfg.study.seeds, "seed": cfg.seed, "dataset": source.name,
        "child_steps": cfg.study.child_steps, "quick": cfg.bench.quick,
        "eval_split": "test", "num_test": source.num_test, "space": cfg.space.name,
        "search": {"epochs": cfg.search.epochs, "steps_per_epoch": cfg.search.steps_per_epoch},
        "child": {"num_layers": cfg.final.num_layers, "filters": cfg.final.filters,
                  "batch_size": cfg.final.batch_size, "learning_rate": cfg.final.learning_rate,
                  "split": "train_full"},
        "found": found, "random": random_rows, **seconds,
        "seconds": time.time() - start, "jobs": jobs,
    }
    if distribute.is_chief(distribute.get_strategy(cfg.distribute)):
        search_report.write_outputs(result, cfg.output_dir)
    search_report.print_headline(result, cfg.output_dir)
    return result
