"""Stateless building blocks of the supernets: plain TF ops on explicit weight tensors.

The supernets read their weights as rows gathered from banks, so their ops are functions of
(inputs, weights). Batch norm here always normalises with the statistics of the batch it sees:
a shared-weight network has no moving statistics that fit every architecture (ENAS scores
architectures in training mode too). Nothing here holds state.
"""

from __future__ import annotations

import tensorflow as tf

from di_nas.di import math as projection
from di_nas.ops import base as ops
from di_nas.supernet.banks import input_shape

BN_EPSILON = ops.BN_EPSILON  # Child networks normalise with the same epsilon.


def batch_norm(x, gamma, beta):
    """Batch norm of NHWC `x` with the statistics of `x` (over batch and positions), computed
    in float32 whatever `x`'s dtype (as Keras normalises under mixed precision); returns `x`'s
    dtype. `gamma`/`beta` None: no scale or offset.

    One fused op (and one for its gradient) instead of the ~15 that `tf.nn.moments` and
    `tf.nn.batch_normalization` build, and ~25 more for their gradient: a supernet has a
    batch norm in every op branch, and inside a `tf.switch_case` every intermediate a gradient
    needs becomes an extra output of every branch. For the quick bench's plain step (2+2
    cells, 20 filters, 32x32) the ops built fell from 28k to 18k and its first call (tracing
    and graph optimisation) from 48 s to 33 s on a 2-core AVX2-only EPYC; the step itself
    did not change. The normalisation is the same (biased batch variance, `BN_EPSILON`).
    """
    channels = x.shape[-1]
    scale = tf.ones([channels]) if gamma is None else tf.cast(gamma, tf.float32)
    offset = tf.zeros([channels]) if beta is None else tf.cast(beta, tf.float32)
    empty = tf.zeros([0])  # No running statistics: training mode normalises by the batch's.
    y = tf.raw_ops.FusedBatchNormV3(
        x=tf.cast(x, tf.float32), scale=scale, offset=offset, mean=empty, variance=empty,
        epsilon=BN_EPSILON, exponential_avg_factor=1.0, data_format="NHWC", is_training=True)[0]
    return tf.cast(y, x.dtype)


def conv(x, kernel, strides: int = 1):
    return tf.nn.conv2d(x, kernel, strides=strides, padding="SAME")


def depthwise(x, kernel):
    return tf.nn.depthwise_conv2d(x, kernel, strides=[1, 1, 1, 1], padding="SAME")


@tf.custom_gradient
def max_pool_3x3(x):
    """3x3 max pooling, stride 1, SAME; its gradient recomputes the pooling next to it.

    The supernet pools inside a `tf.switch_case` branch, whose gradient is another function
    that receives the forward output as an argument. There oneDNN's graph rewrite does not
    recognise `MaxPoolGrad` and leaves TensorFlow's generic kernel, 7x slower on CPU (21 vs 3
    ms at 64x32x32x20): it was the largest cost of the supernet over its child. Recomputing
    the cheap forward inside the gradient keeps the pair together, and the fast kernel runs.
    """
    y = tf.nn.max_pool2d(x, 3, 1, "SAME")

    def grad(dy):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y_again = tf.nn.max_pool2d(x, 3, 1, "SAME")
        return tape.gradient(y_again, x, output_gradients=dy)

    return y, grad


def parameter_free(op: ops.Op, x):
    """The output of an op without weights (`op.has_weights` is False) on `x`."""
    if op.kind == ops.AVG_POOL:
        return tf.nn.avg_pool2d(x, op.kernel_size, 1, "SAME")
    if op.kind == ops.MAX_POOL:
        assert op.kernel_size == 3, op  # The pool whose gradient is written above.
        return max_pool_3x3(x)
    if op.kind == ops.IDENTITY:
        return tf.identity(x)
    if op.kind == ops.ZERO:
        return tf.zeros_like(x)
    raise ValueError(f"op {op.name!r} has weights: the supernet builds it from its sites")


def subsample_pair(x):
    """The two offset stride-2 subsamples of a factorized reduction (ENAS/DARTS)."""
    shifted = tf.pad(x, [[0, 0], [0, 1], [0, 1], [0, 0]])[:, 1:, 1:, :]
    return x[:, ::2, ::2, :], shifted[:, ::2, ::2, :]


def _one_group(m):
    """`m` with a leading group axis of 1 (`tf.expand_dims`: two ops where `m[None]` builds
    four, in code that runs for every kernel of a supernet step)."""
    return tf.expand_dims(m, 0)


class InputRecorder:
    """Computes the input statistics of DI-protected kernels, or nothing when DI is off.

    `statistic="mean"` (the paper's): each kernel's mean input, per sub-batch (`groups`).
    `statistic="covariance"`: each kernel's input second moment; centred for convolutions,
    which are all followed by batch norm here (see `projection`), raw for the dense head.
    Statistics are float32 whatever the compute dtype (the DI math runs in float32).
    They are cut off from the gradient where they are made: inside a `tf.cond` or
    `tf.switch_case` branch, the branch's gradient would otherwise run back through them
    (with zeros, at the cost of a full backward pass through the slicing).
    """

    def __init__(self, enabled: bool, groups: int = 1, statistic: str = "mean"):
        self.enabled = enabled
        self.groups = groups
        self.statistic = statistic

    @property
    def moments(self) -> bool:
        return self.statistic == "covariance"

    def conv(self, x, kernel_size: int, strides: int = 1):
        if not self.enabled:
            return None
        x = tf.cast(x, tf.float32)
        if self.moments:
            return tf.stop_gradient(_one_group(projection.moment_patches(x, kernel_size, strides)))
        return tf.stop_gradient(projection.mean_sub_batches(
            lambda t: projection.mean_patches(t, kernel_size, strides), x, self.groups))

    def depthwise(self, x, kernel_size: int):
        if not self.enabled:
            return None
        x = tf.cast(x, tf.float32)
        if self.moments:
            return tf.stop_gradient(_one_group(projection.moment_depthwise_patches(x, kernel_size)))
        return tf.stop_gradient(projection.mean_sub_batches(
            lambda t: projection.mean_depthwise_patches(t, kernel_size), x, self.groups))

    def dense(self, x):
        if not self.enabled:
            return None
        x = tf.cast(x, tf.float32)
        if self.moments:
            return tf.stop_gradient(_one_group(
                projection.moment_patches(x[:, None, None, :], 1, centered=False)))
        return tf.stop_gradient(projection.mean_sub_batches(
            lambda t: tf.reduce_mean(t, axis=0), x, self.groups))

    def shape(self, bank) -> tuple[int, ...]:
        """Shape of the statistic one site of `bank` records: `[groups, ...]`."""
        one = input_shape(bank)
        if self.moments:
            return (1, *one, one[-1])
        return (self.groups, *one)
