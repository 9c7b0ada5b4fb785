"""What the rank-correlation study writes: `rank.json`, `rank.png`, `rank.md` and its headline.

Formatting only (no training); may import `io`, `studies.plots` and `studies.standalone`.
"""

from __future__ import annotations

import os

import numpy as np

from di_nas.studies import standalone


def per_arch_rows(archs, gt, gt_acc, shared, methods) -> list[dict]:
    """One row per architecture: its standalone runs and its shared-weight accuracies (each
    method's mean over supernet seeds, and per seed)."""
    rows = []
    for i, arch in enumerate(archs):
        rows.append({
            "values": list(arch.values), "readable": str(arch),
            "standalone_acc": float(gt_acc[:, i].mean()),
            "standalone_acc_seeds": gt_acc[:, i].tolist(),
            "standalone_loss": float(np.mean([run[i]["loss"] for run in gt])),
            "standalone_train_loss": float(np.mean([run[i]["train_loss"] for run in gt])),
            "params": gt[0][i]["params"],
            **{f"{m}_acc": float(shared[m]["acc"][i].mean()) for m in methods},
            **{f"{m}_acc_seeds": shared[m]["acc"][i].tolist() for m in methods},
        })
    return rows


def write_outputs(result: dict, output_dir: str) -> None:
    """`rank.json` (NaN written as null), `rank.png` and `rank.md`, each atomically."""
    from di_nas.studies import plots

    standalone.write_report(output_dir, "rank", result, plots.plot_rank, markdown(result))


def _ci(interval) -> str:
    lo, hi = (float("nan") if v is None else v for v in interval)
    return f"[{lo:.3f}, {hi:.3f}]"


def markdown(result: dict) -> str:
    """A short report: the correlations with intervals, the per-arch table and the protocol."""
    di, reset = result["di_config"], result["di_reset_steps"]
    lines = [
        f"# Rank correlation on {result['dataset']}",
        "",
        f"{result['archs']} distinct nb201 architectures ({result['space']['num_cells']} "
        f"cell(s) per stage, {result['space']['filters']} filters), each trained standalone "
        f"for {result['child_steps']} steps from {result['gt_seeds']} seeds (ground truth: "
        f"their mean), and {result['seeds']} supernet seed(s) per method, each supernet "
        f"trained {result['supernet_steps']} steps on uniformly sampled architectures with "
        f"plain and DI weight sharing from the same initial weights. Accuracy on "
        f"{result['eval_examples']} search-valid examples.",
        "",
        f"Ground truth against itself (seed {result['seed']} vs seed {result['seed'] + 1}): "
        f"Kendall tau **{result['gt_self_tau']:.3f}** {_ci(result['gt_self_tau_ci95'])}, "
        "the ceiling of any shared-weight estimate.",
        "",
        "| method | Kendall tau (mean over seeds) | 95% CI | per seed | Spearman rho "
        "| mean shared-weight acc |",
        "|---|---|---|---|---|---|",
    ]
    for method in ("plain", "di"):
        s = result[method]
        seeds = ", ".join(f"{t:.3f}" for t in s["kendall_tau_per_seed"])
        lines.append(f"| {method} | {s['kendall_tau']:.3f} | {_ci(s['kendall_tau_ci95'])} "
                     f"| {seeds} | {s['spearman_rho']:.3f} | {s['mean_acc']:.4f} |")
    lines += ["", f"DI minus plain: {result['di_minus_plain_tau']:+.3f}, 95% CI "
              f"{_ci(result['di_minus_plain_tau_ci95'])} (paired bootstrap over architectures).",
              "", "| architecture | standalone acc (seeds) | plain acc | DI acc |",
              "|---|---|---|---|"]
    for row in sorted(result["per_arch"], key=lambda r: -r["standalone_acc"]):
        readable = row["readable"].replace("|", "\\|")  # A literal pipe in a table cell.
        seeds = "/".join(f"{a:.3f}" for a in row["standalone_acc_seeds"])
        lines.append(f"| `{readable}` | {row['standalone_acc']:.4f} ({seeds}) "
                     f"| {row['plain_acc']:.4f} | {row['di_acc']:.4f} |")
    lines += [
        "",
        f"Standalone accuracy: inference mode (moving batch-norm statistics); shared-weight "
        f"accuracy: batch statistics. Degenerate architectures are not sampled "
        f"({result['skipped_degenerate']} draw(s) skipped). DI: inputs={di['inputs']}, "
        f"beta={di['beta']}, P reset " + (f"every {reset} steps" if reset else "never")
        + f". Intervals: percentile bootstrap over architectures. {result['seconds']:.0f}s.",
        "", "![standalone vs shared-weight accuracy](rank.png)", "",
    ]
    return "\n".join(lines)


def print_headline(result: dict, output_dir: str) -> None:
    """The study's last lines on stdout."""
    print(f"rank ground truth: gt_self_tau {result['gt_self_tau']:.3f} "
          f"{_ci(result['gt_self_tau_ci95'])} (standalone mean acc "
          f"{result['standalone_mean_acc']:.4f})", flush=True)
    for method in ("plain", "di"):
        s = result[method]
        print(f"rank {method:5s}: Kendall tau {s['kendall_tau']:.3f} "
              f"{_ci(s['kendall_tau_ci95'])}, Spearman rho {s['spearman_rho']:.3f} (mean "
              f"shared-weight acc {s['mean_acc']:.4f})", flush=True)
    print(f"rank: DI - plain tau {result['di_minus_plain_tau']:+.3f} "
          f"{_ci(result['di_minus_plain_tau_ci95'])}; {result['archs']} archs, "
          f"{result['child_steps']} child steps x {result['gt_seeds']} seeds, "
          f"{result['supernet_steps']} supernet steps x {result['seeds']} seeds in "
          f"{result['seconds']:.0f}s; wrote {os.path.join(output_dir, 'rank.json')}",
          flush=True)
