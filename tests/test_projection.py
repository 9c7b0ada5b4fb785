"""Analytic tests of the pure DI math (`di_nas.projection`) and the SGD math (`di_nas.optim`)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from di_nas.di import math as proj
from di_nas.training import masked_sgd as optim


def _rng(seed=0):
    return np.random.default_rng(seed)


def _eye(d, batch=()):
    return tf.eye(d, batch_shape=list(batch), dtype=tf.float32)


# The projector update --------------------------------------------------------------------------

def test_update_removes_the_stored_direction():
    x = tf.constant(_rng().standard_normal(12), tf.float32)
    p = proj.rls_update(_eye(12), x, 1e-3)
    # P x = x * beta / (beta + |x|^2) exactly, for P = I before the update.
    assert np.linalg.norm(tf.linalg.matvec(p, x)) <= 1e-3 * np.linalg.norm(x)
    # A second update from an arbitrary P: still (nearly) annihilated.
    x2 = tf.constant(_rng(1).standard_normal(12), tf.float32)
    p2 = proj.rls_update(p, x2, 1e-4)
    assert np.linalg.norm(tf.linalg.matvec(p2, x2)) <= 1e-3 * np.linalg.norm(x2)


def test_update_matches_closed_form():
    x = _rng().standard_normal(5)
    beta = 0.5
    expected = np.eye(5) - np.outer(x, x) / (beta + x @ x)
    got = proj.rls_update(_eye(5), tf.constant(x, tf.float32), beta)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_projector_stays_symmetric_psd_and_contracting():
    rng = _rng(2)
    d = 16
    p = _eye(d)
    for i in range(60):  # More updates than dimensions: P runs all the way down to ~0.
        x = tf.constant(rng.standard_normal(d) * rng.uniform(0.1, 3.0), tf.float32)
        p = proj.rls_update(p, x, 1e-2)
        pn = p.numpy().astype(np.float64)
        np.testing.assert_allclose(pn, pn.T, atol=1e-5, err_msg=f"update {i}")
        eig = np.linalg.eigvalsh((pn + pn.T) / 2)
        assert eig.min() >= -1e-5, (i, eig.min())
        assert eig.max() <= 1 + 1e-5, (i, eig.max())


def test_identity_like_resets():
    rng = _rng(3)
    p = _eye(6, batch=[3, 2])
    for _ in range(4):
        p = proj.rls_update(p, tf.constant(rng.standard_normal([3, 2, 6]), tf.float32), 1e-3)
    assert not np.allclose(p, np.eye(6))
    reset = proj.identity_like(p)
    assert reset.shape == p.shape and reset.dtype == p.dtype
    np.testing.assert_array_equal(reset, np.broadcast_to(np.eye(6), (3, 2, 6, 6)))


def test_gradient_orthogonal_to_stored_inputs_is_unchanged():
    rng = _rng(4)
    d, k = 10, 3
    xs = rng.standard_normal([k, d])
    p = proj.rls_update_many(_eye(d), tf.constant(xs, tf.float32), 1e-3)
    # G's columns in the orthogonal complement of span(xs).
    q, _ = np.linalg.qr(np.concatenate([xs.T, rng.standard_normal([d, d - k])], axis=1))
    g = q[:, k:] @ rng.standard_normal([d - k, 4])
    np.testing.assert_allclose(proj.project(p, tf.constant(g, tf.float32)), g, atol=1e-5)


def test_zero_input_leaves_projector_unchanged():
    rng = _rng(5)
    p = proj.rls_update(_eye(7), tf.constant(rng.standard_normal(7), tf.float32), 0.1)
    np.testing.assert_array_equal(proj.rls_update(p, tf.zeros([7]), 1e-3), p)


def test_batched_update_equals_one_at_a_time():
    rng = _rng(6)
    p = _eye(5, batch=[4])
    x = tf.constant(rng.standard_normal([4, 5]), tf.float32)
    x = tf.tensor_scatter_nd_update(x, [[2]], tf.zeros([1, 5]))  # An inactive site.
    batched = proj.rls_update(p, x, 1e-2)
    for i in range(4):
        np.testing.assert_allclose(batched[i], proj.rls_update(p[i], x[i], 1e-2), atol=1e-6)
    np.testing.assert_array_equal(batched[2], np.eye(5))


def test_rls_update_many_is_sequential():
    rng = _rng(7)
    xs = tf.constant(rng.standard_normal([3, 2, 6]), tf.float32)
    p = _eye(6, batch=[2])
    expected = p
    for i in range(3):
        expected = proj.rls_update(expected, xs[i], 0.3)
    np.testing.assert_allclose(proj.rls_update_many(p, xs, 0.3), expected, atol=1e-6)


def test_projected_update_preserves_response_to_stored_inputs():
    """The point of the method: `W - lr * P G` leaves `W^T x` unchanged for stored `x`."""
    rng = _rng(8)
    d, m, k = 24, 5, 6
    xs = rng.standard_normal([k, d]).astype(np.float32)
    p = proj.rls_update_many(_eye(d), tf.constant(xs), 1e-4)
    w = rng.standard_normal([d, m]).astype(np.float32)
    g = rng.standard_normal([d, m]).astype(np.float32)
    lr = 0.5
    w_di = w - lr * proj.project(p, g).numpy()
    w_plain = w - lr * g
    change_di = np.linalg.norm(xs @ w_di - xs @ w)
    change_plain = np.linalg.norm(xs @ w_plain - xs @ w)
    assert change_di <= 1e-3 * change_plain
    # ... while the update is far from zero on other inputs.
    assert np.linalg.norm(w_di - w) > 0.5 * np.linalg.norm(w_plain - w)


def test_decay_towards_identity():
    rng = _rng(9)
    p = proj.rls_update(_eye(4), tf.constant(rng.standard_normal(4), tf.float32), 1e-3)
    np.testing.assert_allclose(proj.decay_towards_identity(p, 0.25),
                               0.75 * p.numpy() + 0.25 * np.eye(4), atol=1e-7)
    np.testing.assert_array_equal(proj.decay_towards_identity(p, 0.0), p)
    np.testing.assert_allclose(proj.decay_towards_identity(p, 1.0), np.eye(4), atol=1e-7)


def test_effective_beta():
    assert proj.effective_beta(1e-3, 72, scale=False) == 1e-3
    assert proj.effective_beta(1e-3, 72, scale=True) == pytest.approx(0.072)


# Mean inputs -----------------------------------------------------------------------------------

def _brute_patches(x, k, s):
    patches = tf.image.extract_patches(x, sizes=[1, k, k, 1], strides=[1, s, s, 1],
                                       rates=[1, 1, 1, 1], padding="SAME")
    return tf.reduce_mean(patches, axis=[0, 1, 2]).numpy()


@pytest.mark.parametrize("kernel_size,strides", [(3, 1), (3, 2), (5, 1), (1, 1), (1, 2)])
def test_mean_patches_equals_brute_force(kernel_size, strides):
    x = tf.constant(_rng(10).standard_normal([4, 7, 6, 3]), tf.float32)
    np.testing.assert_allclose(proj.mean_patches(x, kernel_size, strides),
                               _brute_patches(x, kernel_size, strides), atol=1e-5)


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_mean_depthwise_patches_equals_brute_force(kernel_size):
    x = tf.constant(_rng(11).standard_normal([3, 6, 6, 4]), tf.float32)
    brute = _brute_patches(x, kernel_size, 1).reshape(kernel_size * kernel_size, 4).T
    np.testing.assert_allclose(proj.mean_depthwise_patches(x, kernel_size), brute, atol=1e-5)


@pytest.mark.parametrize("strides", [1, 2])
def test_conv_output_mean_is_mean_patches_times_matrix(strides):
    """`mean_patches` is ordered as `as_matrix` unfolds the kernel: mean(conv) = x_mean @ W."""
    rng = _rng(12)
    x = tf.constant(rng.standard_normal([2, 6, 6, 3]), tf.float32)
    w = tf.constant(rng.standard_normal([3, 3, 3, 5]), tf.float32)
    out = tf.nn.conv2d(x, w, strides=strides, padding="SAME")
    m = proj.as_matrix("conv", w[None])[0]
    np.testing.assert_allclose(tf.reduce_mean(out, axis=[0, 1, 2]),
                               tf.linalg.matvec(m, proj.mean_patches(x, 3, strides),
                                                transpose_a=True), atol=1e-4)


def test_depthwise_output_mean_is_per_channel_patches_times_matrix():
    rng = _rng(13)
    x = tf.constant(rng.standard_normal([2, 6, 6, 4]), tf.float32)
    w = tf.constant(rng.standard_normal([3, 3, 4, 1]), tf.float32)
    out = tf.nn.depthwise_conv2d(x, w, strides=[1, 1, 1, 1], padding="SAME")
    m = proj.as_matrix("depthwise", w[None])[0]  # [C, k*k, 1]
    xm = proj.mean_depthwise_patches(x, 3)  # [C, k*k]
    expected = tf.reduce_sum(xm * m[..., 0], axis=-1)
    np.testing.assert_allclose(tf.reduce_mean(out, axis=[0, 1, 2]), expected, atol=1e-4)


def test_mean_sub_batches():
    x = tf.constant(_rng(14).standard_normal([6, 4, 4, 2]), tf.float32)
    fn = lambda t: proj.mean_patches(t, 3)  # noqa: E731
    one = proj.mean_sub_batches(fn, x, 1)
    three = proj.mean_sub_batches(fn, x, 3)
    assert one.shape == (1, 18) and three.shape == (3, 18)
    np.testing.assert_allclose(three[1], fn(x[2:4]), atol=1e-6)
    np.testing.assert_allclose(tf.reduce_mean(three, 0), one[0], atol=1e-5)


# Matrix views ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind,shape,matrix_shape", [
    ("conv", (2, 3, 3, 4, 5), (2, 36, 5)),
    ("conv", (3, 1, 1, 6, 6), (3, 6, 6)),
    ("depthwise", (2, 5, 5, 4, 1), (2, 4, 25, 1)),
    ("dense", (2, 8, 10), (2, 8, 10)),
])
def test_matrix_round_trip(kind, shape, matrix_shape):
    w = tf.constant(_rng(15).standard_normal(shape), tf.float32)
    m = proj.as_matrix(kind, w)
    assert tuple(m.shape) == matrix_shape
    np.testing.assert_array_equal(proj.from_matrix(kind, m, shape), w)
    p_shape = proj.projector_shape(kind, shape[1:])
    assert p_shape[-1] == p_shape[-2] == matrix_shape[-2]


def test_projector_shape_unprojected():
    assert proj.projector_shape("vector_ones", (8,)) is None
    with pytest.raises(ValueError):
        proj.as_matrix("vector_ones", tf.zeros([1, 8]))


# Optimiser math --------------------------------------------------------------------------------

@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_update_by_hand(nesterov):
    w, g, buf = 2.0, 0.5, 0.1
    lr, mom, wd = 0.1, 0.9, 0.01
    g_wd = g + wd * w  # 0.52
    new_buf = mom * buf + g_wd  # 0.61
    step = g_wd + mom * new_buf if nesterov else new_buf
    new_w, got_buf = optim.momentum_update(tf.constant(w), tf.constant(g), tf.constant(buf),
                                           lr=lr, momentum=mom, nesterov=nesterov,
                                           weight_decay=wd)
    assert float(got_buf) == pytest.approx(0.61, abs=1e-6)
    assert float(new_w) == pytest.approx(w - lr * step, abs=1e-6)
    assert float(new_w) == pytest.approx(2.0 - 0.1 * (1.069 if nesterov else 0.61), abs=1e-6)


def test_select_rows():
    new = tf.ones([3, 2, 2])
    old = tf.zeros([3, 2, 2])
    out = optim.select_rows(tf.constant([True, False, True]), new, old).numpy()
    np.testing.assert_array_equal(out[:, 0, 0], [1, 0, 1])
    np.testing.assert_array_equal(out[1], np.zeros([2, 2]))


def test_global_norm_scale():
    g1 = tf.constant([[3.0, 0.0], [100.0, 100.0]])  # Second row inactive: ignored.
    g2 = tf.constant([[4.0]])
    actives = [tf.constant([True, False]), tf.constant([True])]
    assert float(optim.global_norm_scale([g1, g2], actives, 1.0)) == pytest.approx(0.2)
    assert float(optim.global_norm_scale([g1, g2], actives, 10.0)) == 1.0
    assert float(optim.global_norm_scale([g1, g2], actives, 0.0)) == 1.0


def test_cosine_lr_endpoints():
    assert float(optim.cosine_lr(0, 100, 0.05, 0.001)) == pytest.approx(0.05)
    assert float(optim.cosine_lr(50, 100, 0.05, 0.001)) == pytest.approx(0.0255)
    assert float(optim.cosine_lr(100, 100, 0.05, 0.001)) == pytest.approx(0.001)
    assert float(optim.cosine_lr(1000, 100, 0.05, 0.001)) == pytest.approx(0.001)
    assert float(optim.cosine_lr(tf.constant(25, tf.int64), 100, 1.0, 0.0)) == pytest.approx(
        0.5 * (1 + math.cos(math.pi / 4)))


def test_block_update_equals_sequential_updates():
    rng = np.random.default_rng(7)
    p = tf.constant(np.eye(6, dtype=np.float32)[None].repeat(3, 0))
    xs = tf.constant(rng.normal(size=(4, 3, 6)).astype(np.float32))
    xs = tf.tensor_scatter_nd_update(xs, [[0, 2], [1, 2], [2, 2], [3, 2]],
                                     tf.zeros([4, 6]))  # Row 2: no input, no change.
    block = proj.rls_update_block(p, xs, 0.1).numpy()
    sequential = proj.rls_update_many(p, xs, 0.1).numpy()
    np.testing.assert_allclose(block, sequential, atol=1e-5)
    np.testing.assert_allclose(block[2], np.eye(6), atol=1e-6)


# Second moments (`--di_inputs=covariance`) -----------------------------------------------------

def test_moment_update_generalises_the_rank_one_and_block_updates():
    rng = _rng(20)
    a = rng.standard_normal((6, 6))
    p = tf.constant(np.eye(6) - 0.05 * (a @ a.T) / 6, tf.float32)  # Symmetric, not I.
    x = rng.standard_normal(6)
    np.testing.assert_allclose(proj.moment_update(p, tf.constant(np.outer(x, x), tf.float32),
                                                  0.3),
                               proj.rls_update(p, tf.constant(x, tf.float32), 0.3), atol=1e-5)
    xs = rng.standard_normal((3, 6))
    block = proj.rls_update_block(p[None], tf.constant(xs, tf.float32)[:, None], 0.3)[0]
    np.testing.assert_allclose(proj.moment_update(p, tf.constant(xs.T @ xs, tf.float32), 0.3),
                               block, atol=1e-5)


def test_moment_update_protects_every_direction_the_inputs_vary_in():
    """After folding in the covariance of inputs spanning a subspace, gradients in it are
    (nearly) removed, gradients orthogonal to it pass, and a zero moment changes nothing."""
    rng = _rng(21)
    basis = np.linalg.qr(rng.standard_normal((8, 8)))[0].astype(np.float32)
    inputs = rng.standard_normal((200, 3)) @ basis[:, :3].T  # Vary in 3 of 8 directions.
    cov = tf.constant(np.cov(inputs.T, bias=True), tf.float32)
    p = proj.moment_update(_eye(8), cov, 1e-4)
    inside = tf.linalg.matvec(p, basis[:, 0])
    outside = tf.linalg.matvec(p, basis[:, 5])
    assert np.linalg.norm(inside) < 1e-2
    np.testing.assert_allclose(outside, basis[:, 5], atol=1e-4)
    np.testing.assert_allclose(proj.moment_update(p, tf.zeros([8, 8]), 1e-4), p, atol=1e-6)


def _brute_moment(x, k, s, centered):
    patches = tf.image.extract_patches(x, sizes=[1, k, k, 1], strides=[1, s, s, 1],
                                       rates=[1, 1, 1, 1], padding="SAME").numpy()
    rows = patches.reshape(-1, patches.shape[-1]).astype(np.float64)
    if centered:
        rows = rows - rows.mean(0)
    return rows.T @ rows / len(rows)


@pytest.mark.parametrize("kernel_size,centered", [(1, True), (3, True), (3, False)])
def test_moment_patches_equals_brute_force(kernel_size, centered):
    # 6x6 images are smaller than the grid: every position is taken.
    x = tf.constant(_rng(22).standard_normal([3, 6, 6, 2]) + 1.5, tf.float32)
    np.testing.assert_allclose(
        proj.moment_patches(x, kernel_size, centered=centered),
        _brute_moment(x, kernel_size, 1, centered), atol=1e-4)


def test_moment_patches_sample_a_grid_of_large_images():
    x = tf.constant(_rng(23).standard_normal([2, 32, 32, 3]), tf.float32)
    step = 32 // proj.GRID
    np.testing.assert_allclose(proj.moment_patches(x, 3),
                               _brute_moment(x, 3, step, True), atol=1e-4)


def test_centred_moments_ignore_a_per_channel_shift():
    """What batch norm removes (a constant per channel) does not change what is protected."""
    x = tf.constant(_rng(24).standard_normal([4, 8, 8, 3]), tf.float32)
    shifted = x + tf.constant([1.0, -2.0, 5.0])
    np.testing.assert_allclose(proj.moment_patches(shifted, 1), proj.moment_patches(x, 1),
                               atol=1e-4)
    np.testing.assert_allclose(proj.moment_depthwise_patches(shifted, 3)[:, 4, 4],
                               proj.moment_depthwise_patches(x, 3)[:, 4, 4], atol=1e-4)


def test_moment_depthwise_patches_equals_brute_force():
    x = tf.constant(_rng(25).standard_normal([3, 6, 6, 4]), tf.float32)
    got = proj.moment_depthwise_patches(x, 3).numpy()
    for c in range(4):
        np.testing.assert_allclose(got[c], _brute_moment(x[..., c:c + 1], 3, 1, True),
                                   atol=1e-4)


def test_moment_update_where_solves_only_active_projectors():
    rng = _rng(26)
    p = tf.constant(np.eye(4, dtype=np.float32)[None].repeat(3, 0))
    xs = rng.standard_normal((3, 5, 4))
    m = tf.constant(np.einsum("nki,nkj->nij", xs, xs) / 5, tf.float32)
    active = tf.constant([True, False, True])
    got = proj.moment_update_where(p, m, 0.5, active).numpy()
    full = proj.moment_update(p, m, 0.5).numpy()
    np.testing.assert_allclose(got[[0, 2]], full[[0, 2]], atol=1e-6)
    np.testing.assert_array_equal(got[1], np.eye(4))


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__]))


def test_rescaled_step_keeps_direction_and_norm_up_to_max_gain():
    """`rescale_rows`: each row points where the projected step does, with the unprojected
    norm when that is within `max_gain` of the projected one, else `max_gain` times it."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 2))
    p = proj.identity_like(tf.zeros([2, 4, 4]))  # one projector per row
    p = tf.stack([proj.rls_update_many(p[i], tf.constant(x[:, : 1 + i].T, tf.float32), 1e-6)
                  for i in range(2)])
    step = tf.constant(rng.normal(size=(2, 4, 3)), tf.float32)
    projected = tf.einsum("rij,rjk->rik", p, step)
    out = optim.rescale_rows(projected, step, max_gain=100.0).numpy()
    before = np.linalg.norm(step.numpy().reshape(2, -1), axis=1)
    after = np.linalg.norm(projected.numpy().reshape(2, -1), axis=1)
    np.testing.assert_allclose(np.linalg.norm(out.reshape(2, -1), axis=1), before, rtol=1e-5)
    np.testing.assert_allclose(out / (before / after)[:, None, None], projected.numpy(),
                               rtol=1e-4, atol=1e-6)
    for r in range(2):  # Still orthogonal to each row's stored inputs.
        assert np.abs(x[:, : 1 + r].T @ out[r]).max() < 1e-3
    capped = optim.rescale_rows(projected, step, max_gain=1.1).numpy()
    np.testing.assert_allclose(capped, projected.numpy() * np.minimum(before / after, 1.1)
                               [:, None, None], rtol=1e-5)
    zero = optim.rescale_rows(tf.zeros_like(step), step, max_gain=5.0)
    assert not np.any(zero.numpy())
