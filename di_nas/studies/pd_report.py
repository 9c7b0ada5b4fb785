"""What the PD study writes and prints: `pd.json`, `pd.png`, `pd.md` and the headline.

Both protocols (`search`, `pair`) report through here. Imports `di_nas.io`,
`di_nas.studies.plots` and `stats`; no TensorFlow, no study logic.
"""

from __future__ import annotations

import json
import os

import numpy as np

from di_nas import io
from di_nas.studies import stats

METHODS = ("plain", "di", "plain_matched")


def add_intervals(result: dict, rows: dict) -> dict:
    """Adds `pd_acc_ci95` per method, `di_minus_plain_ci95` (paired) and DI's plasticity as a
    fraction of plain's, `plasticity_ratio` with its paired `plasticity_ratio_ci95`, from
    per-point `rows` (`{method: [row, ...]}`, the same points in the same order for every
    method)."""
    drops = {m: [r["pd_acc"] for r in rows[m]] for m in METHODS}
    for method in METHODS:
        result[method]["pd_acc_ci95"] = stats.bootstrap_ci(drops[method])
    result["di_minus_plain_ci95"] = stats.paired_bootstrap_ci(drops["di"], drops["plain"])
    gains = [np.array([r["b_gain"] for r in rows[m]], np.float64) for m in ("di", "plain")]
    result["plasticity_ratio"] = _ratio(*gains)
    result["plasticity_ratio_ci95"] = stats.paired_statistic_ci(_ratio, *gains)
    return result


def _ratio(di_gains, plain_gains) -> float:
    """DI's mean plasticity over plain's (nan when plain's is not positive)."""
    denom = float(np.mean(plain_gains))
    return float(np.mean(di_gains)) / denom if denom > 0 else float("nan")


def finish(result: dict, output_dir: str, chief: bool = True) -> dict:
    """Writes the outputs (on the chief only) and prints the headline; returns `result`."""
    if chief:
        write_outputs(result, output_dir)
    print_headline(result, output_dir)
    return result


def write_outputs(result: dict, output_dir: str) -> None:
    """`pd.json`, `pd.png` and `pd.md` under `output_dir`, each written atomically."""
    from di_nas.studies import plots

    io.makedirs(output_dir)
    io.atomic_write_text(os.path.join(output_dir, "pd.json"), json.dumps(result, indent=2) + "\n")
    plots.plot_pd(result, os.path.join(output_dir, "pd.png"))
    io.atomic_write_text(os.path.join(output_dir, "pd.md"), markdown(result))


def _design(result: dict) -> str:
    if result.get("protocol", "pair") == "search":
        return (f"{result['seeds']} seed(s), each from its own warm-up "
                f"({result['warmup_steps']} steps, momentum live); every method runs the same "
                f"{result['steps']}-step search sequence (one step per sampled architecture); at "
                f"{result['pairs']} points in all, the architecture A just trained is evaluated "
                f"on search-valid right after its step and {result['window']} steps later. "
                "Plasticity (B gain): the accuracy gain over the window of the architecture "
                "trained at its end.")
    return (f"{result['pairs']} random pairs (A, B) sharing ops; A and then B trained "
            f"{result['steps']} steps each from the same warmed-up supernet "
            f"({result['warmup_steps']} steps), A the same way for every method and B by the "
            "method (DI: projected against A's inputs); search-valid accuracy of A before and "
            "after B.")


def _ci(values, digits: int = 4) -> str:
    return f"[{values[0]:.{digits}f}, {values[1]:.{digits}f}]" if values else "-"


def _plasticity_parts(result: dict) -> list[str]:
    """The search protocol's split of plasticity: B's gain before its own step and what the
    step adds, per method."""
    if "b_gain_own_mean" not in result["plain"]:
        return []
    parts = ", ".join(f"{m} {result[m]['b_gain_shared_mean']:.4f} + "
                      f"{result[m]['b_gain_own_mean']:.4f}" for m in METHODS)
    return [f"Plasticity = B's gain before its own step + what its own step adds: {parts}."]


def markdown(result: dict) -> str:
    """A short report: the table of means and intervals, and what the figures mean."""
    lines = [f"# Performance disturbance on {result['dataset']}", "", _design(result), "",
             "| method | lr | PD acc (mean +- std) | PD acc 95% CI | PD loss (mean) | "
             "B gain / plasticity (mean) |", "|---|---|---|---|---|---|"]
    for method in METHODS:
        s = result[method]
        lr = s.get("lr", result["lr"])
        lines.append(f"| {method} | {lr:.4g} | {s['pd_acc_mean']:.4f} +- {s['pd_acc_std']:.4f} "
                     f"| {_ci(s.get('pd_acc_ci95'))} | {s['pd_loss_mean']:.4f} "
                     f"| {s['b_gain_mean']:.4f} |")
    plain, di = result["plain"], result["di"]
    keep = result.get("plasticity_ratio", float("nan"))
    cfg = result["di_config"]
    lines += [
        "",
        f"DI's mean accuracy drop is {di['pd_acc_mean']:.4f}, plain's "
        f"{plain['pd_acc_mean']:.4f} (DI - plain, paired 95% CI "
        f"{_ci(result.get('di_minus_plain_ci95'))}); DI keeps {keep:.2f} of plain's "
        f"plasticity (paired 95% CI {_ci(result.get('plasticity_ratio_ci95'), 2)}).",
        *_plasticity_parts(result),
        f"DI: inputs={cfg.get('inputs', 'mean')}, beta={cfg['beta']}, "
        f"project={cfg.get('project', 'gradient')}, reset={cfg.get('reset')}, "
        f"scope={cfg.get('scope', 'all')}. "
        f"Protocol {result.get('protocol', 'pair')}, seed {result['seed']}, "
        f"{result['seconds']:.0f}s.", "", "![PD](pd.png)", ""]
    return "\n".join(lines)


def print_headline(result: dict, output_dir: str) -> None:
    for method in METHODS:
        s = result[method]
        print(f"pd {method:13s} lr={s.get('lr', result['lr']):.4g}: "
              f"A acc drop {s['pd_acc_mean']:.4f} +- {s['pd_acc_std']:.4f} "
              f"(95% CI {_ci(s.get('pd_acc_ci95'))}), loss +{s['pd_loss_mean']:.4f}, "
              f"B gain {s['b_gain_mean']:.4f}", flush=True)
    print(f"pd: di's plasticity {result.get('plasticity_ratio', float('nan')):.2f} of plain's "
          f"(paired 95% CI {_ci(result.get('plasticity_ratio_ci95'), 2)})", flush=True)
    for line in _plasticity_parts(result):
        print(f"pd: {line}", flush=True)
    print(f"pd: di - plain drop, paired 95% CI {_ci(result.get('di_minus_plain_ci95'))}; "
          f"{result.get('protocol', 'pair')} protocol, {result['pairs']} points, "
          f"{result['seconds']:.0f}s; wrote {os.path.join(output_dir, 'pd.json')}", flush=True)


def per_seed_means(rows: list[dict], seeds: list[int]) -> list[dict]:
    """Per-seed means of `pd_acc` and `b_gain`: `rows` holds `len(rows) // len(seeds)` points
    per seed, seed by seed."""
    per = len(rows) // max(len(seeds), 1)
    return [{"seed": s, "pd_acc_mean": float(np.mean([r["pd_acc"] for r in chunk])),
             "b_gain_mean": float(np.mean([r["b_gain"] for r in chunk]))}
            for s, chunk in ((s, rows[i * per:(i + 1) * per]) for i, s in enumerate(seeds))]
