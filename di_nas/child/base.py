"""Parts every child network shares: drop path and copying a supernet path's weights.

Imports Keras, TensorFlow and numpy only; never supernets, training or flags.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


class DropPath(keras.layers.Layer):
    """Drops a whole op output per example with probability ``rate * scale`` (training only).

    Kept examples are scaled by ``1 / keep`` so the expected output is unchanged. ``scale`` is
    a non-trainable weight the training loop ramps up (``set_drop_path_scale``), as in DARTS
    where the drop probability grows linearly with the epoch; it does not retrace anything.
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate = float(rate)
        self.seed_generator = keras.random.SeedGenerator(seed)
        # A layer attribute, so the RNG position is saved with the model's checkpoint.
        self.seed_state = self.seed_generator.state

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(), initializer="ones",
                                     trainable=False)

    def call(self, x, training=False):
        if not training or self.rate <= 0.0:
            return x
        keep = 1.0 - self.rate * tf.cast(self.scale, x.dtype)
        shape = [tf.shape(x)[0]] + [1] * (len(x.shape) - 1)
        noise = keras.random.uniform(shape, seed=self.seed_generator, dtype=x.dtype)
        return x * tf.cast(noise < keep, x.dtype) / keep

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}


def set_drop_path_scale(model: keras.Model, scale: float) -> None:
    """Sets the drop-path ramp (0..1) of every ``DropPath`` layer of ``model``."""
    for layer in model.layers:
        if isinstance(layer, DropPath):
            layer.scale.assign(scale)


def load_path_weights(child: keras.Model, weights: dict[str, np.ndarray]) -> None:
    """Copies `Supernet.path_weights(arch)` into a child built at the supernet's size."""
    combine = {}
    names = {layer.name for layer in child.layers}
    for site, value in weights.items():
        layer_name, _, part = site.rpartition("-")
        if "-combine-n" in layer_name:
            layer, _, node = layer_name.rpartition("-")
            combine.setdefault(layer, []).append((int(node[1:]), value))
            continue
        if layer_name not in names:
            continue  # A cell input this architecture never reads: pruned from the child.
        layer = child.get_layer(layer_name)
        if isinstance(layer, keras.layers.BatchNormalization):
            (layer.gamma if part == "gamma" else layer.beta).assign(value)
        elif part == "bias":
            layer.bias.assign(value)
        else:
            layer.kernel.assign(value.reshape(layer.kernel.shape))
    for layer_name, parts in combine.items():
        if layer_name not in names:
            continue  # A whole cell no later layer reads (e.g. a normal cell reading only
            # its first input right after a reduction): pruned from the functional child.
        kernel = np.concatenate([v for _, v in sorted(parts)], axis=2)
        child.get_layer(layer_name).kernel.assign(kernel)
