"""Masked SGD with momentum for shared weights: pure update math and the learning-rate schedule.

Why not a Keras optimizer: in a weight-sharing step, weights off the sampled path get zero
gradients, and a stateful Keras optimizer would still move them (momentum, weight decay). The
supernet updates only rows of its weight banks that the sampled path used; this module holds
the math for those rows. Nothing here creates variables.
"""

from __future__ import annotations

import math

import tensorflow as tf

PROJECT_MODES = ("gradient", "step", "buffer")


def momentum_update(w, g, buf, *, lr, momentum: float, nesterov: bool, weight_decay: float,
                    project=None, mode: str = "gradient", max_gain: float = 1.0):
    """One SGD step (PyTorch/ENAS convention): returns `(new_w, new_buf)`.

    With `project` (a function `G -> P @ G`), `mode` says what it is applied to:
    ``gradient``: the raw gradient only; weight decay and the momentum buffer, built from
    gradients projected with older `P`s, are added after it, so the step leaves `P`'s range.
    ``step``: the whole step (gradient, weight decay and the Nesterov/momentum direction); the
    buffer keeps raw directions. ``buffer``: the gradient plus weight decay, and the buffer
    re-projected with the current `P` each step, so the buffer and the step both lie in `P`'s
    range. With a projector `P` (`P x = 0`), both of the latter keep `W^T x` exactly.
    `max_gain > 1` (``step`` only) scales each row's projected step back towards the norm it
    had before the projection, by at most that factor: the direction stays in `P`'s range,
    the step keeps more of its length (`rescale_rows`).
    """
    if project is not None and mode == "gradient":
        g = project(g)
    d = g + weight_decay * w
    if project is not None and mode == "buffer":
        d = project(d)
        buf = momentum * project(buf) + d
    else:
        buf = momentum * buf + d
    step = d + momentum * buf if nesterov else buf
    if project is not None and mode == "step":
        step = rescale_rows(project(step), step, max_gain) if max_gain > 1.0 else project(step)
    return w - lr * step, buf


def rescale_rows(projected, original, max_gain: float):
    """`projected` `[n, ...]`, each row scaled by `|original row| / |projected row|`, at most
    `max_gain` (a row the projection zeroed stays zero)."""
    axes = list(range(1, len(original.shape)))
    before = tf.sqrt(tf.reduce_sum(tf.square(original), axis=axes))
    after = tf.sqrt(tf.reduce_sum(tf.square(projected), axis=axes))
    gain = tf.minimum(before / tf.maximum(after, 1e-12), max_gain)
    gain = tf.where(after > 0.0, tf.maximum(gain, 1.0), 1.0)
    return projected * tf.reshape(gain, [-1] + [1] * len(axes))


def decay_momentum(buf, last_step, step, momentum: float):
    """Buffer rows `buf` `[n, ...]` last updated at `last_step` `[n]`, decayed by `momentum`
    once for every step since that they were off the path (as zero-gradient steps would)."""
    idle = tf.maximum(tf.cast(step - last_step, tf.float32) - 1.0, 0.0)
    factor = tf.pow(tf.constant(momentum, tf.float32), idle)
    return buf * tf.reshape(factor, [-1] + [1] * (len(buf.shape) - 1))


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
