"""Keras layers of the candidate ops, for the standalone child networks.

`apply(op, h, filters, name)` builds the layers of one op on `h` (functional API). Layers with
weights are named after the supernet's sites minus their `-kernel` suffix, so that
`child.load_path_weights` can copy a supernet path into a child; batch norm uses the
supernets' epsilon (`base.BN_EPSILON`). Imports Keras and `ops.base` only.
"""

from __future__ import annotations

import keras

from di_nas.ops.base import AVG_POOL, BN_EPSILON, CONV, IDENTITY, MAX_POOL, SEP_CONV, ZERO, Op


def bn(name: str) -> keras.layers.BatchNormalization:
    """Batch norm with moving statistics for inference and the supernets' epsilon."""
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=BN_EPSILON, name=name)


def conv(filters: int, kernel_size: int, name: str, strides: int = 1) -> keras.layers.Conv2D:
    """A SAME-padded convolution without bias (batch norm follows)."""
    return keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same",
                               use_bias=False, name=name)


def _sep_conv(op: Op, h, filters: int, name: str):
    for stack in range(op.stacks):
        prefix = f"{name}-s{stack}"
        h = keras.layers.ReLU()(h)
        h = keras.layers.DepthwiseConv2D(op.kernel_size, padding="same", use_bias=False,
                                         name=f"{prefix}-dw")(h)
        h = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"{prefix}-pw")(h)
        h = bn(f"{prefix}-bn")(h)
    return h


def _conv(op: Op, h, filters: int, name: str):
    h = keras.layers.ReLU()(h)
    return bn(f"{name}-bn")(conv(filters, op.kernel_size, name)(h))


_BUILDERS = {
    SEP_CONV: _sep_conv,
    CONV: _conv,
    AVG_POOL: lambda op, h, f, n: keras.layers.AveragePooling2D(op.kernel_size, 1,
                                                                padding="same")(h),
    MAX_POOL: lambda op, h, f, n: keras.layers.MaxPooling2D(op.kernel_size, 1,
                                                            padding="same")(h),
    IDENTITY: lambda op, h, f, n: h,
    ZERO: lambda op, h, f, n: keras.layers.Lambda(keras.ops.zeros_like)(h),
}


def apply(op: Op, h, filters: int, name: str):
    """The output of `op` on the Keras tensor `h` (`filters` channels in and out).

    Args:
      op: the op to build.
      h: its input.
      filters: channels of `h` and of the output.
      name: the site prefix of its weighted layers (e.g. `L0-e2-conv3x3`).
    """
    return _BUILDERS[op.kind](op, h, filters, name)
