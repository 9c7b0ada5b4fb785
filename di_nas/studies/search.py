"""The search study: does the search find better architectures than uniform random sampling?

1. For `study.seeds` seeds (`seed`, `seed + 1`, ...), run the search (`training.search.run_search`,
   the function `di-nas-search` calls, with `cfg.search` as given) three ways over the same
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
   `search.png` and `search.md` (chief only, atomically).

`--quick` (a smoke run) shortens every search to one epoch of a few steps and every child to a
few steps, with at most 2 seeds and 3 random architectures.

Must not read flags or import the CLI.
"""

from __future__ import annotations

import os
import time

import numpy as np
from tqdm.auto import tqdm  # a widget in Jupyter, a text bar elsewhere

from di_nas.studies import standalone
from di_nas.training import progress

METHODS = ("di", "plain", "random_ws")
OVERRIDES = {"di": {"di": {"enabled": True}},
             "plain": {"di": {"enabled": False}},
             "random_ws": {"controller": {"name": "random"}}}
DESCRIPTIONS = {"di": "REINFORCE controller, DI weight sharing",
                "plain": "REINFORCE controller, plain weight sharing (--nodi)",
                "random_ws": "random sampling (--controller=random) over the same supernet"}

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

    run_cfg = cfg.replace(seed=seed, output_dir=os.path.join(cfg.output_dir, "runs",
                                                             f"{method}_seed{seed}"),
                          **OVERRIDES[method])
    start = time.time()
    result = run_search(run_cfg)
    seconds = result.get("search_seconds", time.time() - start)
    best = result["best"]
    return {"seed": seed, "values": [int(v) for v in best["values"]],
            "readable": best["readable"], "search_valid_accuracy": best["accuracy"],
            "search_seconds": float(seconds), "output_dir": run_cfg.output_dir,
            "final_reward_mean": result.get("final_reward_mean")}


def _searches(cfg) -> dict:
    found = {m: [] for m in METHODS}
    total = len(METHODS) * cfg.study.seeds
    for i in range(cfg.study.seeds):
        for method in METHODS:
            done = i * len(METHODS) + METHODS.index(method)
            progress.log(f"search study: search {done + 1}/{total} ({method}, seed "
                         f"{cfg.seed + i})")
            found[method].append(_run_one(cfg, method, cfg.seed + i))
    return found


def _train_children(cfg, source, archs: list, seed: int | None = None) -> dict:
    """Test accuracy of each distinct architecture (values tuple -> child result), every child
    from `seed` (default `cfg.seed`)."""
    from di_nas import distribute

    distinct = list(dict.fromkeys(tuple(a.values) for a in archs))
    by_values = {tuple(a.values): a for a in archs}
    steps = cfg.study.child_steps
    out = {}
    strategy = distribute.get_strategy(cfg.distribute)
    with strategy.scope():
        test = standalone.eval_dataset(cfg, source, "test")
        with tqdm(total=len(distinct) * steps, desc="search study children", unit="step",
                  mininterval=2.0) as bar:
            for values in distinct:
                out[values] = standalone.train_child(cfg, source, by_values[values], steps,
                                                     test, split="train_full", seed=seed,
                                                     bar=bar)
    return out


def run_search_study(cfg, source) -> dict:
    """Runs the search study (see the module docstring); returns what `search.json` holds."""
    from di_nas import distribute
    from di_nas.search_space import get_space

    cfg = cfg.replace(study={"child_steps": cfg.study.child_budget()})
    cfg = quick_config(cfg) if cfg.bench.quick else cfg
    start = time.time()
    space = get_space(cfg.space.name)
    found = _searches(cfg)
    rng = np.random.default_rng([cfg.seed, 2])
    randoms = [space.sample(rng) for _ in range(cfg.study.random_archs)]
    found_archs = [space.architecture(r["values"]) for rows in found.values() for r in rows]
    progress.log(f"search study: training {len(found_archs) + len(randoms)} children for "
                 f"{cfg.study.child_steps} steps each")
    t = time.time()
    children = _train_children(cfg, source, found_archs + randoms)
    child_seconds = time.time() - t
    for rows in found.values():
        for row in rows:
            child = children[tuple(row["values"])]
            row.update(accuracy=child["accuracy"], test_loss=child["loss"],
                       params=child["params"])
    progress.log(f"search study: training the {len(randoms)} random architectures again from "
                 f"seed {cfg.seed + 1} (does the budget separate architectures?)")
    t = time.time()
    again = _train_children(cfg, source, randoms, seed=cfg.seed + 1)
    child_seconds += time.time() - t
    random_rows = [{"values": list(a.values), "readable": str(a),
                    "accuracy": children[tuple(a.values)]["accuracy"],
                    "accuracy_second_seed": again[tuple(a.values)]["accuracy"],
                    "params": children[tuple(a.values)]["params"]} for a in randoms]
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
        "found": found, "random": random_rows,
        "child_seconds": child_seconds, "seconds": time.time() - start,
    }
    if distribute.is_chief(distribute.get_strategy(cfg.distribute)):
        write_outputs(result, cfg.output_dir)
    print_headline(result, cfg.output_dir)
    return result


# Outputs ---------------------------------------------------------------------------------------

def write_outputs(result: dict, output_dir: str) -> None:
    """`search.json`, `search.png` and `search.md` under `output_dir`, each atomically."""
    from di_nas.studies import plots

    standalone.write_report(output_dir, "search", result, plots.plot_search, markdown(result))


def markdown(result: dict) -> str:
    """A short report: per-method accuracy, percentile and search time, and the protocol."""
    r, child = result["random_archs"], result["child"]
    lines = [
        f"# Does the search beat random? ({result['dataset']})",
        "",
        f"{result['seeds']} seed(s) per method; each search ran {result['search']['epochs']} "
        f"epochs of {result['search']['steps_per_epoch']} shared steps on {result['space']}. "
        f"Every found and every one of {len(result['random'])} uniformly sampled "
        f"architectures was trained standalone for {result['child_steps']} steps "
        f"({child['num_layers']} cells x {child['filters']} filters, batch "
        f"{child['batch_size']}, on search-train + search-valid, same initial seed) and scored "
        f"on the {result['num_test']} test images, which no search step reads.",
        "",
        "| method | test acc mean +- std | percentile among random (mean) | search time |",
        "|---|---|---|---|",
    ]
    for method in METHODS:
        s = result[method]
        lines.append(f"| {method}: {DESCRIPTIONS[method]} | {s['acc_mean']:.4f} +- "
                     f"{s['acc_std']:.4f} | {s['percentile_mean']:.0f} | "
                     f"{s['search_seconds_mean']:.0f}s |")
    lo, hi = r["self_tau_ci95"]
    lines += [f"| random architectures | {r['acc_mean']:.4f} +- {r['acc_std']:.4f} (median "
              f"{r['acc_median']:.4f}, {r['acc_min']:.4f}-{r['acc_max']:.4f}) | 50 | - |",
              "", f"Does the budget separate architectures? The random ones trained again from "
              f"a second seed agree with the first at Kendall tau {r['self_tau']:.2f} "
              f"[{lo:.2f}, {hi:.2f}] (95% bootstrap interval; 1 = the same ranking from any "
              f"seed, 0 = differences no larger than training noise); one child's accuracy "
              f"varies by {r['seed_noise_std']:.4f} (std) between seeds.",
              "", "| method | seed | found architecture | search-valid acc | test acc |",
              "|---|---|---|---|---|"]
    for method in METHODS:
        for row in result["found"][method]:
            readable = row["readable"].replace("|", "\\|")
            lines.append(f"| {method} | {row['seed']} | `{readable}` | "
                         f"{row['search_valid_accuracy']:.4f} | {row['accuracy']:.4f} |")
    lines += ["", "Search times are each run's own wall time (`search_seconds`), on a shared "
              "machine unless the README says otherwise.",
              "", f"Children: {result['child_seconds']:.0f}s; whole study "
              f"{result['seconds']:.0f}s.", "", "![test accuracy per method](search.png)", ""]
    return "\n".join(lines)


def print_headline(result: dict, output_dir: str) -> None:
    r = result["random_archs"]
    for method in METHODS:
        s = result[method]
        print(f"search {method:9s}: test acc {s['acc_mean']:.4f} +- {s['acc_std']:.4f}, "
              f"percentile {s['percentile_mean']:.0f} among random, search "
              f"{s['search_seconds_mean']:.0f}s", flush=True)
    print(f"search random   : test acc {r['acc_mean']:.4f} +- {r['acc_std']:.4f} (median "
          f"{r['acc_median']:.4f}, seed-to-seed tau {r['self_tau']:.2f}); "
          f"{result['child_steps']} child steps; "
          f"{result['seconds']:.0f}s; wrote {os.path.join(output_dir, 'search.json')}",
          flush=True)
