"""Masked SGD with momentum for shared weights: pure update math and the learning-rate schedule.

Why not a Keras optimizer: in a weight-sharing step, weights off the sampled path get zero
gradients, and a stateful Keras optimizer would still move them (momentum, weight decay). The
supernet updates only rows of its weight banks that the sampled path used; this module holds
the math for those rows. Nothing here creates variables.
"""

from __future__ import annotations

import math

import tensorflow as tf


def momentum_update(w, g, buf, *, lr, momentum: float, nesterov: bool, weight_decay: float):
    """One SGD step (PyTorch/ENAS convention): returns `(new_w, new_buf)`.

    `g` is the (already projected) gradient; weight decay is added after projection.
    """
    g = g + weight_decay * w
    buf = momentum * buf + g
    step = g + momentum * buf if nesterov else buf
    return w - lr * step, buf


def select_rows(active, new, old):
    """`new` where `active` (`[n]` bool) else `old`, row-wise over `[n, ...]` tensors."""
    mask = tf.reshape(active, [-1] + [1] * (len(old.shape) - 1))
    return tf.where(mask, new, old)


def global_norm_scale(grads, active_masks, clip_norm: float):
    """Scale factor that clips the global norm of the active rows' gradients to `clip_norm`."""
    if not clip_norm:
        return tf.constant(1.0)
    squares = []
    for g, active in zip(grads, active_masks, strict=True):
        axes = list(range(1, len(g.shape)))
        row_sq = tf.reduce_sum(tf.square(g), axis=axes) if axes else tf.square(g)
        squares.append(tf.reduce_sum(tf.where(active, row_sq, 0.0)))
    norm = tf.sqrt(tf.add_n(squares))
    return tf.minimum(1.0, clip_norm / tf.maximum(norm, 1e-12))


def cosine_lr(step, total_steps: int, lr_max: float, lr_min: float):
    """Cosine decay from `lr_max` to `lr_min` over `total_steps` (a tensor, no retrace)."""
    progress = tf.minimum(tf.cast(step, tf.float32) / float(max(total_steps, 1)), 1.0)
    return lr_min + 0.5 * (lr_max - lr_min) * (1.0 + tf.cos(math.pi * progress))
