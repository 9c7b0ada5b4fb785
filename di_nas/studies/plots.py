"""Figures of the studies (matplotlib; no study logic here).

Notebook-safe: figures are `matplotlib.figure.Figure` objects made without pyplot, so nothing
switches the global backend (inline plots keep working); each plotter saves its figure and
returns it (Jupyter shows a returned figure).
"""

from __future__ import annotations

import os

import numpy as np

COLORS = {"plain": "tab:red", "di": "tab:blue", "plain_matched": "tab:orange"}


def _figure(*args, figsize=None, **kwargs):
    """`(fig, axes)` like `pyplot.subplots`, without pyplot (no backend, no global state)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kwargs)


def save_atomic(fig, path: str) -> None:
    """Saves `fig` to `path` atomically (readers never see half a file)."""
    import io

    from di_nas.io import atomic_write_bytes

    fmt = os.path.splitext(path)[1].lstrip(".") or "png"
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=120, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())


def plot_pd(result: dict, path: str):
    """Per-point accuracy drop of A and plasticity (B's gain), one bar per method; and per
    method the per-seed mean drops (dots) with the pooled mean and its 95% interval."""
    fig, axes = _figure(1, 3, figsize=(15, 3.8))
    methods = [m for m in ("plain", "di", "plain_matched") if m in result["per_pair"]]
    n = result["pairs"]
    x = np.arange(n)
    width = 0.8 / len(methods)
    for ax, key, title in ((axes[0], "pd_acc", "A's accuracy drop"),
                           (axes[1], "b_gain", "B's accuracy gain (plasticity)")):
        for i, method in enumerate(methods):
            values = [r[key] for r in result["per_pair"][method]]
            lr = result[method].get("lr", result.get("lr"))
            label = f"{method} (mean {np.mean(values):.3f}, lr {lr:.3g})"
            ax.bar(x + (i - (len(methods) - 1) / 2) * width, values, width, label=label,
                   color=COLORS.get(method))
            ax.axhline(np.mean(values), color=COLORS.get(method), lw=1, ls="--")
        ax.axhline(0.0, color="black", lw=0.6)
        ax.set_title(title)
        ax.set_xlabel("point" if result.get("protocol") == "search" else "pair")
        ax.set_xticks(x[:: max(1, n // 10)])
        ax.legend(fontsize=7)
    axes[0].set_ylabel("accuracy")
    _plot_seeds(axes[2], result, methods)
    fig.suptitle(f"Performance disturbance, {result['dataset']}: {result.get('protocol', 'pair')}"
                 f" protocol, {n} points, {result.get('seeds', 1)} seed(s)")
    save_atomic(fig, path)
    return fig


def _plot_seeds(ax, result: dict, methods) -> None:
    """Per-seed mean drops and the pooled mean with its 95% bootstrap interval."""
    for i, method in enumerate(methods):
        s = result[method]
        seeds = [p["pd_acc_mean"] for p in s.get("per_seed", [])]
        ax.scatter(np.full(len(seeds), i) - 0.1, seeds, color=COLORS.get(method), alpha=0.7)
        lo, hi = s.get("pd_acc_ci95", [s["pd_acc_mean"]] * 2)
        ax.errorbar(i + 0.1, s["pd_acc_mean"], yerr=[[s["pd_acc_mean"] - lo],
                                                     [hi - s["pd_acc_mean"]]],
                    fmt="o", color="black", capsize=4, ms=4)
    ax.axhline(0.0, color="black", lw=0.6)
    ax.set_xticks(range(len(methods)))
    ax.set_xticklabels(methods)
    ax.set_title(f"per seed (dots), mean and 95% CI; DI - plain CI "
                 f"{np.round(result.get('di_minus_plain_ci95', [np.nan] * 2), 4).tolist()}")


def plot_rank(result: dict, path: str):
    """Standalone vs shared-weight accuracy (left) and the same as ranks (right), one colour per
    method, Kendall tau in the legend."""
    fig, axes = _figure(1, 2, figsize=(11, 4.2))
    rows = result["per_arch"]
    truth = np.array([r["standalone_acc"] for r in rows])
    truth_rank = np.argsort(np.argsort(-truth)) + 1  # 1 = best; ties broken by order
    for method in ("plain", "di"):
        if f"{method}_acc" not in rows[0]:
            continue
        acc = np.array([r[f"{method}_acc"] for r in rows])
        s = result[method]
        label = f"{method}: tau {s['kendall_tau']:.3f}, rho {s['spearman_rho']:.3f}"
        axes[0].scatter(truth, acc, label=label, color=COLORS.get(method), alpha=0.8)
        axes[1].scatter(truth_rank, np.argsort(np.argsort(-acc)) + 1, label=label,
                        color=COLORS.get(method), alpha=0.8)
    axes[0].set_xlabel("standalone accuracy (ground truth)")
    axes[0].set_ylabel("shared-weight accuracy")
    axes[0].set_title("accuracy")
    n = len(rows)
    axes[1].plot([1, n], [1, n], color="black", lw=0.6, ls="--")
    axes[1].set_xlabel("standalone rank (1 = best)")
    axes[1].set_ylabel("shared-weight rank")
    axes[1].set_title("rank")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.suptitle(f"Rank correlation, {result['dataset']}: {n} nb201 archs, "
                 f"{result['child_steps']} standalone / {result['supernet_steps']} supernet steps")
    save_atomic(fig, path)
    return fig


def plot_search(result: dict, path: str):
    """Test accuracy of the random architectures (grey; hollow: the same ones from a second
    seed) and of each method's found ones, one point per seed, with the random median as a
    dashed line."""
    fig, ax = _figure(figsize=(7, 4))
    methods = [m for m in ("di", "plain", "random_ws") if m in result]
    columns = [("random archs", result["random_archs"]["accs"], "tab:gray")]
    columns += [(m, result[m]["accs"], COLORS.get(m, "tab:green")) for m in methods]
    jitter = np.random.default_rng(0)
    for x, (_, accs, color) in enumerate(columns):
        xs = x + jitter.uniform(-0.12, 0.12, len(accs))
        ax.scatter(xs, accs, color=color, alpha=0.8, zorder=3)
        again = result["random_archs"].get("accs_second_seed") if x == 0 else None
        if again:  # each random architecture from its second seed: the training noise
            ax.scatter(xs, again, facecolors="none", edgecolors=color, zorder=3,
                       label=f"2nd seed (tau {result['random_archs']['self_tau']:.2f})")
            ax.vlines(xs, accs, again, color=color, lw=0.6, alpha=0.6)
        ax.errorbar(x + 0.25, np.mean(accs), yerr=np.std(accs), fmt="o", color="black",
                    capsize=4, ms=4)
    ax.axhline(result["random_archs"]["acc_median"], color="tab:gray", ls="--", lw=1,
               label="random median")
    ax.set_xticks(range(len(columns)))
    ax.set_xticklabels([c[0] for c in columns])
    ax.set_ylabel(f"test accuracy after {result['child_steps']} child steps")
    ax.legend(fontsize=8)
    ax.set_title(f"Found vs random architectures, {result['dataset']}: "
                 f"{result['seeds']} seed(s) per method")
    save_atomic(fig, path)
    return fig
