"""Figures of the studies (matplotlib, Agg backend, files only; no study logic here)."""

from __future__ import annotations

import os

import numpy as np

COLORS = {"plain": "tab:red", "di": "tab:blue", "plain_matched": "tab:orange"}


def _figure(*args, **kwargs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, plt.subplots(*args, **kwargs)


def save_atomic(fig, path: str) -> None:
    """Saves `fig` to `path` atomically (readers never see half a file)."""
    import io

    from di_nas.io import atomic_write_bytes

    fmt = os.path.splitext(path)[1].lstrip(".") or "png"
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=120, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())


def plot_pd(result: dict, path: str) -> None:
    """Per-pair accuracy drop of A (left) and accuracy gain of B (right), one bar per method."""
    plt, (fig, axes) = _figure(1, 2, figsize=(11, 3.8))
    methods = [m for m in ("plain", "di", "plain_matched") if m in result["per_pair"]]
    n = result["pairs"]
    x = np.arange(n)
    width = 0.8 / len(methods)
    for ax, key, title in ((axes[0], "pd_acc", "A's accuracy drop after training B"),
                           (axes[1], "b_gain", "B's accuracy gain")):
        for i, method in enumerate(methods):
            values = [r[key] for r in result["per_pair"][method]]
            lr = result[method].get("lr", result.get("lr"))
            label = f"{method} (mean {np.mean(values):.3f}, lr {lr:.3g})"
            ax.bar(x + (i - (len(methods) - 1) / 2) * width, values, width, label=label,
                   color=COLORS.get(method))
            ax.axhline(np.mean(values), color=COLORS.get(method), lw=1, ls="--")
        ax.axhline(0.0, color="black", lw=0.6)
        ax.set_title(title)
        ax.set_xlabel("pair")
        ax.set_xticks(x[:: max(1, n // 10)])
        ax.legend(fontsize=7)
    axes[0].set_ylabel("accuracy")
    fig.suptitle(f"Performance disturbance, {result['dataset']}: {n} pairs, "
                 f"{result['steps']} steps each")
    save_atomic(fig, path)
    plt.close(fig)


def plot_rank(result: dict, path: str) -> None:
    """Standalone vs shared-weight accuracy (left) and the same as ranks (right), one colour per
    method, Kendall tau in the legend."""
    plt, (fig, axes) = _figure(1, 2, figsize=(11, 4.2))
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
    plt.close(fig)
