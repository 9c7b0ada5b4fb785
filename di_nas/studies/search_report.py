"""The search study's outputs: `search.json`, `search.png`, `search.md` and the headline lines.

Pure formatting of the result dict `studies.search.run_search_study` builds; imports no
TensorFlow.
"""

from __future__ import annotations

import os

from di_nas.studies import standalone

METHODS = ("di", "plain", "random_ws")
DESCRIPTIONS = {"di": "REINFORCE controller, DI weight sharing",
                "plain": "REINFORCE controller, plain weight sharing (--nodi)",
                "random_ws": "random sampling (--controller=random) over the same supernet"}


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
    lines += ["", f"Search times are each run's own wall time (`search_seconds`), "
              f"{result.get('jobs', 1)} search(es) or children at a time.",
              "", f"Searches with the random architectures' children queued behind them: "
              f"{result['pooled_seconds']:.0f}s; the found architectures' children: "
              f"{result['child_seconds']:.0f}s; whole study {result['seconds']:.0f}s.", "",
              "![test accuracy per method](search.png)", ""]
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
