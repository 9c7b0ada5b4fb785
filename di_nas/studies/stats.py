"""Interval estimates the studies report: percentile bootstrap, plain and paired.

Pure NumPy; knows nothing of models or studies. Resampling is seeded, so a report is
reproducible from its inputs.
"""

from __future__ import annotations

import numpy as np


def kendall_tau(x, y) -> float:
    """Kendall's tau-b of two score lists (ties allowed); NaN when either list is constant.

    Pairwise signs in NumPy: the same value as `scipy.stats.kendalltau`, without its p-value,
    fast enough to call thousands of times inside a bootstrap.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"kendall_tau needs two 1-D lists of one length: {x.shape}, {y.shape}")
    upper = np.triu_indices(x.size, k=1)
    sx = np.sign(x[:, None] - x[None, :])[upper]
    sy = np.sign(y[:, None] - y[None, :])[upper]
    denom = np.sqrt(np.sum(sx * sx) * np.sum(sy * sy))
    return float(np.sum(sx * sy) / denom) if denom > 0 else float("nan")


def bootstrap_ci(values, *, statistic=np.mean, level: float = 0.95, resamples: int = 2000,
                 seed: int = 0) -> list[float]:
    """Percentile bootstrap interval `[lo, hi]` of `statistic` over `values` (1-D)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, values.size, size=(resamples, values.size))
    stats = np.array([statistic(values[p]) for p in picks])
    tail = (1.0 - level) / 2.0
    return [float(np.quantile(stats, tail)), float(np.quantile(stats, 1.0 - tail))]


def paired_bootstrap_ci(a, b, **kwargs) -> list[float]:
    """Bootstrap interval of `mean(a - b)` over paired measurements (same points resampled)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in shape: {a.shape} vs {b.shape}")
    return bootstrap_ci(a - b, **kwargs)


def paired_statistic_ci(fn, a, b, *, level: float = 0.95, resamples: int = 2000,
                        seed: int = 0) -> list[float]:
    """Bootstrap interval of `fn(a[idx], b[idx])`, resampling the shared index (e.g. a tau)."""
    a, b = np.asarray(a), np.asarray(b)
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(resamples):
        idx = rng.integers(0, len(a), size=len(a))
        stats.append(fn(a[idx], b[idx]))
    stats = np.asarray(stats, dtype=np.float64)
    stats = stats[np.isfinite(stats)]
    if stats.size == 0:
        return [float("nan"), float("nan")]
    tail = (1.0 - level) / 2.0
    return [float(np.quantile(stats, tail)), float(np.quantile(stats, 1.0 - tail))]
