"""Bootstrap intervals: coverage of a known mean, pairing, determinism."""

import numpy as np
import pytest

from di_nas.studies import stats


def test_interval_contains_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(1)
    small, large = rng.normal(2.0, 1.0, 20), rng.normal(2.0, 1.0, 2000)
    lo_s, hi_s = stats.bootstrap_ci(small)
    lo_l, hi_l = stats.bootstrap_ci(large)
    assert lo_l < 2.0 < hi_l
    assert hi_l - lo_l < (hi_s - lo_s) / 4


def test_paired_interval_sees_a_shift_that_unpaired_noise_hides():
    rng = np.random.default_rng(2)
    base = rng.normal(0.0, 10.0, 50)
    lo, hi = stats.paired_bootstrap_ci(base - 0.5, base)
    assert hi < 0 and lo == pytest.approx(-0.5) and hi == pytest.approx(-0.5)


def test_kendall_tau_matches_scipy_with_ties_and_is_nan_when_constant():
    from scipy import stats as scipy_stats

    rng = np.random.default_rng(0)
    for n in (2, 5, 24):
        x = rng.integers(0, 4, n).astype(float)  # many ties, as in a bootstrap resample
        y = x + rng.integers(0, 3, n)
        if np.ptp(x) and np.ptp(y):
            assert stats.kendall_tau(x, y) == pytest.approx(scipy_stats.kendalltau(x, y)[0])
    assert stats.kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(stats.kendall_tau([1, 2, 3], [5, 5, 5]))
    with pytest.raises(ValueError, match="one length"):
        stats.kendall_tau([1, 2], [1, 2, 3])


def test_seeded_and_checked():
    assert stats.bootstrap_ci([1, 2, 3], seed=5) == stats.bootstrap_ci([1, 2, 3], seed=5)
    with pytest.raises(ValueError):
        stats.paired_bootstrap_ci([1, 2], [1, 2, 3])
    lo, hi = stats.paired_statistic_ci(lambda a, b: float(np.corrcoef(a, b)[0, 1]),
                                       np.arange(30.0), np.arange(30.0) * 2)
    assert lo == pytest.approx(1.0) and hi == pytest.approx(1.0)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
