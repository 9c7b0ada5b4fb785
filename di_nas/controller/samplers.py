"""In-graph samplers that need no policy: seeds and uniform architectures.

Used by the random-search and Bayesian baselines during the shared-weight phase (random search
with weight sharing: every minibatch trains a uniformly sampled architecture). Everything here
runs inside a `tf.function` with no host round trip. This module must not know about Keras
Tuner or the supernet.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def as_seed(seed) -> tf.Tensor:
    """A stateless-op seed: an int becomes `[seed, 0]`; a shape-[2] tensor passes through.

    Args:
      seed: a Python int, or an integer tensor/array of shape [2].

    Returns:
      An int64 tensor of shape [2].
    """
    if isinstance(seed, (int, np.integer)):
        return tf.constant([int(seed), 0], tf.int64)
    return tf.cast(tf.reshape(seed, [2]), tf.int64)


def uniform_sample(space, num, seed=None) -> tf.Tensor:
    """Uniformly random architectures of `space`, sampled in-graph.

    Args:
      space: a `SearchSpace`.
      num: how many architectures (int or scalar int tensor).
      seed: int or shape-[2] tensor for stateless, reproducible sampling; None uses TF's
        global (stateful) random ops.

    Returns:
      int32 tensor [num, space.length]; column d lies in [0, space.num_choices[d]).
    """
    shape = tf.stack([tf.cast(num, tf.int32), space.length])
    if seed is None:
        u = tf.random.uniform(shape)
    else:
        u = tf.random.stateless_uniform(shape, seed=as_seed(seed))
    choices = tf.constant(space.num_choices, tf.float32)
    archs = tf.cast(tf.floor(u * choices), tf.int32)
    # floor(u * n) == n only when u rounds to 1.0 in float32: clamp to stay valid.
    return tf.minimum(archs, tf.constant(space.num_choices - 1, tf.int32))


class UniformSampler(tf.Module):
    """Uniform in-graph sampler whose random state is a checkpointable `tf.random.Generator`.

    Args:
      space: a `SearchSpace`.
      seed: initial seed of the generator.
    """

    def __init__(self, space, seed: int = 0):
        super().__init__(name="uniform_sampler")
        self.space = space
        self.rng = tf.random.Generator.from_seed(seed)

    def sample(self, num) -> tf.Tensor:
        """int32 [num, D] uniform architectures; advances the generator state."""
        return uniform_sample(self.space, num, self.rng.make_seeds(1)[:, 0])
