"""The projector unit (`di_nas.di.projector`): state, switches and its two kinds of entry."""

import numpy as np
import pytest
import tensorflow as tf

from di_nas.di import math as proj
from di_nas.di.projector import Kernel, Projector


def _x(seed, d):
    return tf.constant(np.random.default_rng(seed).standard_normal(d), tf.float32)


def test_single_row_kernel_keeps_the_recorded_response():
    """A Keras-style conv kernel (one row): after recording a mean input, the projected
    gradient leaves the kernel's response to that input (nearly) unchanged."""
    unit = Projector({"conv": Kernel("conv", (3, 3, 2, 5))}, beta=1e-4, statistic="mean")
    x = _x(0, 18)
    unit.update("conv", x[None])
    grad = tf.constant(np.random.default_rng(1).standard_normal((3, 3, 2, 5)), tf.float32)
    g = unit.project("conv", grad)
    assert g.shape == grad.shape
    response = tf.linalg.matvec(tf.reshape(g, [18, 5]), x, transpose_a=True)
    raw = tf.linalg.matvec(tf.reshape(grad, [18, 5]), x, transpose_a=True)
    assert np.linalg.norm(response) <= 1e-3 * np.linalg.norm(raw)
    unit.reset()
    np.testing.assert_allclose(unit.p["conv"].numpy()[0], np.eye(18))


def test_rows_match_the_pure_math_and_inactive_rows_stay():
    unit = Projector({"bank": Kernel("dense", (4, 3), rows=3)}, beta=0.5)
    xs = tf.stack([_x(2, 4), _x(3, 4)])  # Two sites: rows 2 and 0.
    unit.update("bank", xs[None], rows=tf.constant([2, 0]), active=tf.constant([True, False]))
    p = unit.p["bank"].numpy()
    want = proj.rls_update(tf.eye(4), xs[0], 0.5).numpy()
    np.testing.assert_allclose(p[2], want, atol=1e-6)
    np.testing.assert_array_equal(p[0], np.eye(4))
    np.testing.assert_array_equal(p[1], np.eye(4))


def test_switches_and_statistics():
    unit = Projector({"k": Kernel("dense", (3, 2))}, beta=1.0, statistic="covariance")
    m = tf.constant(np.diag([4.0, 0.0, 0.0]), tf.float32)
    unit.recording.assign(False)
    unit.update("k", m[None])
    np.testing.assert_array_equal(unit.p["k"].numpy()[0], np.eye(3))
    unit.recording.assign(True)
    unit.update("k", m[None])
    np.testing.assert_allclose(unit.p["k"].numpy()[0], np.diag([0.2, 1.0, 1.0]), atol=1e-6)
    assert float(unit.trace_stats()["k"]) == pytest.approx(2.2 / 3, abs=1e-6)
    grad = tf.ones([3, 2])
    unit.projecting.assign(False)
    np.testing.assert_array_equal(unit.project("k", grad).numpy(), grad.numpy())
    unit.projecting.assign(True)
    np.testing.assert_allclose(unit.project("k", grad).numpy()[0], [0.2, 0.2], atol=1e-6)
    unit.decay_all(0.5)
    np.testing.assert_allclose(unit.p["k"].numpy()[0], np.diag([0.6, 1.0, 1.0]), atol=1e-6)
    assert unit.nbytes() == 9 * 4


def test_unprojected_and_oversized_entries_are_left_out():
    unit = Projector({"gamma": Kernel("vector_ones", (8,)), "big": Kernel("dense", (10, 2)),
                      "ok": Kernel("depthwise", (3, 3, 4, 1), rows=2)}, beta=1.0, max_dim=9)
    assert not unit.protects("gamma") and not unit.protects("big") and unit.protects("ok")
    assert unit.p["ok"].shape == (2, 4, 9, 9)
    with pytest.raises(ValueError):
        Projector({}, beta=1.0, statistic="median")


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))
