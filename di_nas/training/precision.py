"""Mixed precision: the Keras dtype policy a job computes under, and dynamic loss scaling.

`--precision=mixed_bfloat16|mixed_float16` computes the networks in 16 bits and keeps every
variable in float32 (Keras's mixed policies). The supernet casts its bank rows where it reads
them and returns float32 logits; batch norm, the DI input statistics, the projectors and
their math stay float32 (`supernet.functional`), and the children's heads compute in float32,
so an exported SavedModel takes and returns float32. float16's narrow range needs the loss
scaled up before the backward pass: `DynamicLossScale` does that for the shared-weight step
(final training uses Keras's `LossScaleOptimizer`). Knows no model and no strategy.
"""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf

GROWTH_INTERVAL = 2000  # Finite steps before the scale doubles (Keras's default).
INITIAL_SCALE = 2.0 ** 15


@contextlib.contextmanager
def policy(name: str):
    """Sets Keras's global dtype policy to `name` ("float32", "mixed_bfloat16",
    "mixed_float16") while inside: models and supernets built here compute in it."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def all_finite(tensors) -> tf.Tensor:
    """Whether every element of every tensor is finite (a scalar bool)."""
    return tf.reduce_all([tf.reduce_all(tf.math.is_finite(t)) for t in tensors])


class DynamicLossScale(tf.Module):
    """The loss scale of float16 training: halved after a step that overflows, doubled after
    `GROWTH_INTERVAL` finite steps in a row. Its variables are checkpointed with the trainer."""

    def __init__(self):
        super().__init__(name="loss_scale")
        self.value = tf.Variable(INITIAL_SCALE, trainable=False, name="value")
        self.finite_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="finite_steps")

    def scale(self, loss):
        return loss * tf.cast(self.value, loss.dtype)

    def unscale(self, grads):
        inverse = 1.0 / self.value
        return [g * tf.cast(inverse, g.dtype) for g in grads]

    def update(self, strategy, finite) -> None:
        """After a step (cross-replica): grow or shrink the scale."""
        count = tf.where(finite, self.finite_steps + 1, 0)
        grow = count >= GROWTH_INTERVAL
        value = tf.where(finite, tf.where(grow, self.value * 2.0, self.value), self.value / 2.0)
        count = tf.where(grow, tf.zeros_like(count), count)
        strategy.extended.update(self.value, lambda v, x: v.assign(x), args=(value,), group=False)
        strategy.extended.update(self.finite_steps, lambda v, x: v.assign(x), args=(count,),
                                 group=False)
