"""The disturbance-immune (DI) projection: pure tensor math, no Keras or model knowledge.

For a shared weight viewed as a matrix `W` of shape `[d_in, d_out]`, DI keeps a projector `P`
(`[d_in, d_in]`, identity at start), trains with `P @ G` instead of the gradient `G`, and after a
step folds the layer's mean input `x` into `P` (recursive least squares / orthogonal weight
modification):

    P <- P - (P x)(P x)^T / (beta + x^T P x)

so that later updates leave `W^T x` (the layer's response to protected inputs) unchanged.
A richer statistic than the mean is also here: the inputs' second moment `M` (`[d, d]`), folded
in by its information form `P <- (P^{-1} + M / beta)^{-1}`. With `M = x x^T` this is the update
above; with the covariance of the inputs it protects every direction they vary in, in proportion
to how much. A kernel followed by batch norm needs exactly that: BN subtracts the per-channel
mean of its output, so moving the kernel along the mean input changes nothing after BN, and
what a previous architecture depends on is the kernel's response to its centred inputs.

Every function here is batched over leading dimensions, so one call updates the projectors of
many layers at once. Nothing here creates variables.
"""

from __future__ import annotations

import tensorflow as tf


def identity_like(p: tf.Tensor) -> tf.Tensor:
    """Identity matrices with the shape and dtype of `p` (`[..., d, d]`)."""
    shape = tf.shape(p)
    return tf.eye(shape[-1], batch_shape=shape[:-2], dtype=p.dtype)


def project(p: tf.Tensor, g: tf.Tensor) -> tf.Tensor:
    """`P @ G` for `P` `[..., d, d]` and `G` `[..., d, m]`."""
    return tf.linalg.matmul(p, g)


def rls_update(p: tf.Tensor, x: tf.Tensor, beta) -> tf.Tensor:
    """One projector update with input means `x` `[..., d]`; returns the new `P`.

    A zero `x` leaves `P` unchanged, which the batched callers rely on for layers off the path.
    """
    px = tf.linalg.matvec(p, x)
    denom = beta + tf.reduce_sum(x * px, axis=-1)
    update = px[..., :, None] * px[..., None, :] / denom[..., None, None]
    return p - update


def rls_update_many(p: tf.Tensor, xs: tf.Tensor, beta) -> tf.Tensor:
    """Sequential `rls_update` over `xs` `[n, ..., d]` (several means of one step)."""
    for i in range(xs.shape[0]):
        p = rls_update(p, xs[i], beta)
    return p


def rls_update_block(p: tf.Tensor, xs: tf.Tensor, beta) -> tf.Tensor:
    """All of `xs` `[n, ..., d]` folded into `P` at once (matrix inversion lemma):

        P <- P - P X^T (beta I + X P X^T)^{-1} X P

    Equal to `rls_update_many` (the inverse of P gains X^T X / beta either way), with one
    small `n x n` solve instead of `n` sequential updates.
    """
    if xs.shape[0] == 1:
        return rls_update(p, xs[0], beta)
    x = tf.experimental.numpy.moveaxis(xs, 0, -2)  # [..., n, d]
    px = tf.linalg.matmul(p, x, transpose_b=True)  # [..., d, n]
    gram = tf.linalg.matmul(x, px) + beta * tf.eye(xs.shape[0], dtype=p.dtype)
    return p - tf.linalg.matmul(px, tf.linalg.solve(gram, tf.linalg.matrix_transpose(px)))


def moment_update(p: tf.Tensor, m: tf.Tensor, beta) -> tf.Tensor:
    """Folds second moments `m` `[..., d, d]` into `P`: `P <- (I + P M / beta)^{-1} P`.

    The information form of RLS: `P^{-1}` gains `M / beta`, so `M = x x^T` gives `rls_update`
    and `M = X^T X` gives `rls_update_block`. A zero `M` leaves `P` unchanged. The result is
    symmetrised against round-off.
    """
    eye = identity_like(p)
    p_new = tf.linalg.solve(eye + tf.linalg.matmul(p, m) / beta, p)
    return 0.5 * (p_new + tf.linalg.matrix_transpose(p_new))


def moment_update_where(p: tf.Tensor, m: tf.Tensor, beta, active: tf.Tensor) -> tf.Tensor:
    """`moment_update` of the projectors `p` `[n, ..., d, d]` whose `active` `[n]` is True;
    the others are returned as they are, without solving for them (a path uses few of a
    bank's sites, and the solve is the update's main cost)."""
    rows = tf.where(active)
    new = moment_update(tf.gather_nd(p, rows), tf.gather_nd(m, rows), beta)
    return tf.tensor_scatter_nd_update(p, rows, new)


def decay_towards_identity(p: tf.Tensor, rate) -> tf.Tensor:
    """`(1 - rate) P + rate I`: gives back plasticity gradually instead of a hard reset."""
    return (1.0 - rate) * p + rate * identity_like(p)


def effective_beta(beta: float, d_in: int, scale: bool) -> float:
    """`beta`, optionally scaled with the input size so wide layers are not more plastic."""
    return beta * d_in if scale else beta


# Mean inputs of layers: the `x` of the update, computed without unfolding every patch.

def mean_patches(x: tf.Tensor, kernel_size: int, strides: int = 1,
                 padding: str = "SAME") -> tf.Tensor:
    """Mean of the unfolded `k x k x C` input patches of a convolution over batch and positions.

    The mean is linear, so it equals the patches of the batch-mean image averaged over
    positions: only one image is unfolded, not the whole batch.

    Args:
      x: `[batch, H, W, C]`.
    Returns:
      `[k * k * C]`, in the order of a kernel `[k, k, C, out]` reshaped to `[k*k*C, out]`.
    """
    if kernel_size == 1 and strides == 1:
        return tf.reduce_mean(x, axis=[0, 1, 2])
    mean_image = tf.reduce_mean(x, axis=0, keepdims=True)
    patches = tf.image.extract_patches(
        mean_image, sizes=[1, kernel_size, kernel_size, 1], strides=[1, strides, strides, 1],
        rates=[1, 1, 1, 1], padding=padding)
    return tf.reduce_mean(patches, axis=[0, 1, 2])


def mean_depthwise_patches(x: tf.Tensor, kernel_size: int, strides: int = 1,
                           padding: str = "SAME") -> tf.Tensor:
    """Per-channel mean `k x k` patches for a depthwise kernel: `[C, k*k]`."""
    channels = x.shape[-1]
    flat = mean_patches(x, kernel_size, strides, padding)  # [k*k*C], channel fastest.
    return tf.transpose(tf.reshape(flat, [kernel_size * kernel_size, channels]))


# Second moments of layer inputs (the `M` of `moment_update`), from a grid of positions.

GRID = 4  # Positions per image side at which second moments are sampled (16 per image).
IMAGES = 16  # Images of the batch they are sampled from (256 rows; enough for d <= 80).


def _grid(x: tf.Tensor, step: int = 1) -> tf.Tensor:
    """The first `IMAGES` images of `x`, every `step`-th position (one slice op, none when it
    would keep everything: these run for every kernel of a supernet step, and graph building
    is what its tracing time is made of)."""
    if step == 1 and x.shape[0] is not None and x.shape[0] <= IMAGES:
        return x
    return x[:IMAGES, ::step, ::step, :] if step > 1 else x[:IMAGES]


def _grid_step(x: tf.Tensor) -> int:
    """The stride of the sampling grid on `x`'s positions."""
    return max(1, int(x.shape[1]) // GRID)


def _second_moment(rows: tf.Tensor, centered: bool) -> tf.Tensor:
    """`rows` `[n, ..., d]` -> `[..., d, d]`: mean outer product, of deviations if `centered`."""
    if centered:
        rows = rows - tf.reduce_mean(rows, axis=0, keepdims=True)
    n = rows.shape[0]  # A Python number wherever the batch is static: no ops for it.
    n = float(n) if n is not None else tf.cast(tf.shape(rows)[0], rows.dtype)
    return tf.einsum("n...i,n...j->...ij", rows, rows) / n


def moment_patches(x: tf.Tensor, kernel_size: int, strides: int = 1,
                   centered: bool = True) -> tf.Tensor:
    """Second moment `[k*k*C, k*k*C]` of a convolution's unfolded input patches.

    Patches are taken on a grid of about `GRID x GRID` positions (every position of small
    images) of the first `IMAGES` images, in the kernel's `[k*k*C]` order.
    """
    step = _grid_step(x) * strides
    if kernel_size == 1:
        patches = _grid(x, step)
    else:
        patches = tf.image.extract_patches(
            _grid(x), sizes=[1, kernel_size, kernel_size, 1], strides=[1, step, step, 1],
            rates=[1, 1, 1, 1], padding="SAME")
    return _second_moment(tf.reshape(patches, [-1, patches.shape[-1]]), centered)


def moment_depthwise_patches(x: tf.Tensor, kernel_size: int,
                             centered: bool = True) -> tf.Tensor:
    """Per-channel second moments `[C, k*k, k*k]` of a depthwise kernel's input patches."""
    step, channels = _grid_step(x), x.shape[-1]
    patches = tf.image.extract_patches(
        _grid(x), sizes=[1, kernel_size, kernel_size, 1], strides=[1, step, step, 1],
        rates=[1, 1, 1, 1], padding="SAME")
    rows = tf.reshape(patches, [-1, kernel_size * kernel_size, channels])
    return _second_moment(tf.transpose(rows, [0, 2, 1]), centered)


def mean_sub_batches(fn, x: tf.Tensor, groups: int) -> tf.Tensor:
    """`fn` applied to `groups` equal slices of the batch, stacked: `[groups, ...]`."""
    if groups == 1:
        return fn(x)[None]
    parts = tf.split(x, groups, axis=0)
    return tf.stack([fn(part) for part in parts])


# Views of kernels as matrices `[..., d_in, d_out]` and back.

def as_matrix(kind: str, w: tf.Tensor) -> tf.Tensor:
    """Batched kernels `[n, *kernel]` as matrices: conv `[n, k*k*cin, cout]`, depthwise
    `[n, C, k*k, 1]` (one matrix per channel), dense `[n, cin, cout]`."""
    if kind == "conv":
        n, k1, k2, cin, cout = w.shape
        return tf.reshape(w, [-1, k1 * k2 * cin, cout])
    if kind == "depthwise":
        n, k1, k2, c, mult = w.shape
        return tf.transpose(tf.reshape(w, [-1, k1 * k2, c, mult]), [0, 2, 1, 3])
    if kind == "dense":
        return w
    raise ValueError(f"kind {kind!r} has no matrix view")


def from_matrix(kind: str, m: tf.Tensor, shape) -> tf.Tensor:
    """Inverse of `as_matrix` for kernels of `shape` `[n, *kernel]`."""
    if kind == "depthwise":
        n, k1, k2, c, mult = shape
        return tf.reshape(tf.transpose(m, [0, 2, 1, 3]), [-1, k1, k2, c, mult])
    return tf.reshape(m, [-1, *shape[1:]])


def projector_shape(kind: str, kernel_shape) -> tuple[int, ...] | None:
    """Shape of one projector for a kernel of `kernel_shape`, or None if not projected."""
    if kind == "conv":
        k1, k2, cin, _ = kernel_shape
        return (k1 * k2 * cin, k1 * k2 * cin)
    if kind == "depthwise":
        k1, k2, c, _ = kernel_shape
        return (c, k1 * k2, k1 * k2)
    if kind == "dense":
        return (kernel_shape[0], kernel_shape[0])
    return None
