"""A supernet small enough to trace in seconds, for the distribution tests (test-only).

The real supernets take minutes to trace under a two-replica `MirroredStrategy` on a shared
CPU; what the distribution tests check (all-reduce, merged masked row updates, projectors) does
not depend on the cell, so they use this net: stem conv + BN, an always-active depthwise conv,
one edge switching over the five nb201 ops (two of them convs with their own kernels), and a
dense head. It has every projected bank kind (conv, depthwise, dense) and row masking.

`bn_group` makes batch norm normalise each consecutive group of `bn_group` examples with its
own statistics ("ghost" batch norm). With `bn_group=B`, one replica fed 2B examples normalises
exactly as two replicas fed B each do with ordinary per-replica batch norm.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from di_nas.ops.base import weighted
from di_nas.search_space import nb201
from di_nas.supernet import banks as B
from di_nas.supernet import functional as F
from di_nas.supernet.base import Supernet

CONV_OPS = weighted(nb201.OPS)  # nb201 op index -> its conv op.


class TinySupernet(Supernet):
    """See the module docstring; the architecture's first nb201 edge picks the op."""

    space = nb201.SPACE

    def __init__(self, num_classes=4, image_shape=(6, 6, 1), filters=4, bn_group=None, seed=0):
        self.filters = filters
        self.bn_group = bn_group
        super().__init__(num_classes, image_shape, seed=seed)

    def _declare(self):
        c = self.filters
        self.site("stem-kernel", B.CONV, (3, 3, self.image_shape[-1], c))
        self._bn_sites("stem-bn", c)
        self.site("dw-kernel", B.DEPTHWISE, (3, 3, c, 1))
        for op, conv in CONV_OPS.items():
            k = conv.kernel_size
            self.site(f"op{op}-kernel", B.CONV, (k, k, c, c), op_pos=0, op_value=op)
            self._bn_sites(f"op{op}-bn", c, op_pos=0, op_value=op)
        self.site("head-kernel", B.DENSE, (c, self.num_classes))
        self.site("head-bias", B.VECTOR_ZEROS, (self.num_classes,))

    def _bn_sites(self, name, c, **placement):
        self.site(f"{name}-gamma", B.VECTOR_ONES, (c,), **placement)
        self.site(f"{name}-beta", B.VECTOR_ZEROS, (c,), **placement)

    def _bn(self, rec, name, x):
        gamma, beta = self.w(rec, f"{name}-gamma"), self.w(rec, f"{name}-beta")
        if not self.bn_group:
            return F.batch_norm(x, gamma, beta)
        shape = tf.shape(x)
        groups = tf.reshape(x, [-1, self.bn_group, shape[1], shape[2], shape[3]])
        mean, var = tf.nn.moments(groups, axes=[1, 2, 3], keepdims=True)
        out = tf.nn.batch_normalization(groups, mean, var, beta, gamma, F.BN_EPSILON)
        return tf.reshape(out, shape)

    def _forward(self, images, arch, rec, inputs):
        self.note_input(rec, "stem-kernel", inputs.conv(images, 3))
        x = self._bn(rec, "stem-bn", F.conv(images, self.w(rec, "stem-kernel")))
        r = tf.nn.relu(x)
        self.note_input(rec, "dw-kernel", inputs.depthwise(r, 3))
        x = F.depthwise(r, self.w(rec, "dw-kernel"))
        names = [f"op{op}-kernel" for op in CONV_OPS]

        def branch(op):
            stats = {}
            if op in CONV_OPS:
                r = tf.nn.relu(x)
                stats[f"op{op}-kernel"] = inputs.conv(r, CONV_OPS[op].kernel_size)
                out = self._bn(rec, f"op{op}-bn", F.conv(r, self.w(rec, f"op{op}-kernel")))
            else:
                out = F.parameter_free(nb201.OPS[op], x)
            if not inputs.enabled:
                return out
            return (out, *[stats[n] if n in stats else
                           tf.zeros(inputs.shape(self.sites[n][0]))
                           for n in names])

        result = tf.switch_case(arch[0], [functools.partial(branch, op)
                                          for op in range(len(nb201.OPS))])
        if inputs.enabled:
            for name, x_mean in zip(names, result[1:], strict=True):
                self.note_input(rec, name, x_mean)
            result = result[0]
        h = tf.reduce_mean(tf.nn.relu(x + result), axis=[1, 2])
        self.note_input(rec, "head-kernel", inputs.dense(h))
        return tf.matmul(h, self.w(rec, "head-kernel")) + self.w(rec, "head-bias")


def arch_for_step(step, seed: int = 0) -> tf.Tensor:
    """The architecture of `step`: stateless, so every replica and worker draws the same."""
    seed = tf.stack([tf.constant(seed, tf.int64), tf.cast(step, tf.int64)])
    u = tf.random.stateless_uniform([nb201.SPACE.length], seed=seed)
    num_ops = len(nb201.OPS)
    return tf.minimum(tf.cast(u * float(num_ops), tf.int32), num_ops - 1)


def examples(num: int, image_shape=(6, 6, 1), num_classes: int = 4, seed: int = 0):
    """Deterministic synthetic images and labels."""
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((num, *image_shape)).astype(np.float32)
    labels = rng.integers(0, num_classes, size=num).astype(np.int32)
    return images, labels


def bank_arrays(supernet, trainer) -> dict[str, np.ndarray]:
    """Every bank, momentum and projector of `trainer` as numpy arrays (first replica)."""
    out = {f"bank/{b.name}": np.asarray(b.variable.numpy()) for b in supernet.banks}
    out.update({f"momentum/{k}": v.numpy() for k, v in trainer.momentum.items()})
    out.update({f"projector/{k}": v.numpy() for k, v in trainer.projectors.items()})
    return out
