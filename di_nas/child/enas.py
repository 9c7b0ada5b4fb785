"""Standalone networks of one architecture (no switches): final training and export.

`build_child` builds a functional Keras model with the same topology as the supernet's path,
at any depth and width; its layers are named after the supernet's sites, so
`load_path_weights` can copy a path's weights into it (tests use this to show that the
supernet computes exactly the child). Batch norm layers are Keras' own (moving statistics for
inference), with the supernet's epsilon.

For final training (DARTS/ENAS recipe) a child can also have an auxiliary head after the last
reduction cell (the model then returns ``[logits, aux_logits]``) and drop path on every
non-identity op of a cell; both are off by default, so the default child is exactly the
supernet's path.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from di_nas.search_space import Architecture
from di_nas.search_space import enas_micro as enas_space
from di_nas.supernet.functional import BN_EPSILON
from di_nas.supernet.layout import enas_layers

SEP_KERNELS = {0: 3, 1: 5}


def _bn(name):
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=BN_EPSILON, name=name)


def _conv1x1(filters, name, strides=1):
    return keras.layers.Conv2D(filters, 1, strides=strides, padding="same", use_bias=False,
                               name=name)


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


def _aux_head(x, num_classes: int):
    """DARTS' auxiliary head, sized from the feature map (any image size, even 2x2 maps)."""
    h = keras.layers.ReLU()(x)
    if min(h.shape[1], h.shape[2]) >= 5:
        h = keras.layers.AveragePooling2D(5, strides=3, padding="valid")(h)
    h = _bn("aux-conv0-bn")(_conv1x1(128, "aux-conv0")(h))
    h = keras.layers.ReLU()(h)
    h = keras.layers.Conv2D(768, (h.shape[1], h.shape[2]), padding="valid", use_bias=False,
                            name="aux-conv1")(h)
    h = keras.layers.ReLU()(_bn("aux-conv1-bn")(h))
    h = keras.layers.Flatten()(h)
    return keras.layers.Dense(num_classes, name="aux-head")(h)


class _Builder:
    """Builds an ENAS micro child; names match `EnasMicroSupernet` sites."""

    def __init__(self, arch: Architecture, num_layers, filters, stem_multiplier, drop_path,
                 total_cells):
        self.values = arch.values
        self.num_layers = num_layers
        self.filters = filters
        self.stem_multiplier = stem_multiplier
        self.drop_path = drop_path
        self.total_cells = total_cells

    def relu_conv_bn(self, name, x, filters):
        x = keras.layers.ReLU()(x)
        return _bn(f"{name}-bn")(_conv1x1(filters, name)(x))

    def factorized_reduce(self, name, x, filters):
        x = keras.layers.ReLU()(x)
        a = keras.layers.Lambda(lambda t: t[:, ::2, ::2, :])(x)
        b = keras.layers.ZeroPadding2D(((0, 1), (0, 1)))(x)
        b = keras.layers.Lambda(lambda t: t[:, 1:, 1:, :][:, ::2, ::2, :])(b)
        a = _conv1x1(filters // 2, f"{name}-a")(a)
        b = _conv1x1(filters - filters // 2, f"{name}-b")(b)
        return _bn(f"{name}-bn")(keras.layers.Concatenate()([a, b]))

    def op(self, prefix, op, h, filters):
        if op in SEP_KERNELS:
            for stack in range(2):
                name = f"{prefix}-s{stack}"
                h = keras.layers.ReLU()(h)
                h = keras.layers.DepthwiseConv2D(SEP_KERNELS[op], padding="same",
                                                 use_bias=False, name=f"{name}-dw")(h)
                h = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"{name}-pw")(h)
                h = _bn(f"{name}-bn")(h)
            return self.drop(prefix, h)
        if op == 2:
            return self.drop(prefix, keras.layers.AveragePooling2D(3, 1, padding="same")(h))
        if op == 3:
            return self.drop(prefix, keras.layers.MaxPooling2D(3, 1, padding="same")(h))
        return h  # identity: never dropped (DARTS)

    def drop(self, prefix, h):
        if self.drop_path <= 0.0:
            return h
        # Deeper cells drop more (NASNet's scheduled drop path): rate * (cell + 1) / cells.
        rate = self.drop_path * (self.cell_index + 1) / self.total_cells
        return DropPath(rate, name=f"{prefix}-drop")(h)

    def cell(self, index, reduction, states, filters):
        self.cell_index = index
        cell = 1 if reduction else 0
        values = self.values[cell * enas_space.PER_CELL:(cell + 1) * enas_space.PER_CELL]
        nodes = list(states)
        for node in range(enas_space.NUM_NODES):
            outs = []
            for slot in range(2):
                in_pos, op_pos = enas_space.decision_index(cell, node, slot)
                op = self.values[op_pos]
                prefix = f"L{index}-n{node + 2}-{'xy'[slot]}-{enas_space.SHORT[enas_space.OPS[op]]}"
                outs.append(self.op(prefix, op, nodes[self.values[in_pos]], filters))
            nodes.append(keras.layers.Add()(outs))
        loose = enas_space.loose_ends(values)
        outs = [nodes[n + 2] for n in loose]
        h = outs[0] if len(outs) == 1 else keras.layers.Concatenate()(outs)
        h = keras.layers.ReLU()(h)
        h = _conv1x1(filters, f"L{index}-combine")(h)
        return _bn(f"L{index}-combine-bn")(h)

    def build(self, inputs, num_classes, auxiliary=False):
        """Logits, or ``[logits, aux_logits]`` when ``auxiliary``."""
        stem_c = self.filters * self.stem_multiplier
        x = keras.layers.Conv2D(stem_c, 3, padding="same", use_bias=False,
                                name="stem")(inputs)
        x = _bn("stem-bn")(x)
        states = [(x, stem_c, False), (x, stem_c, False)]
        plans = enas_layers(self.num_layers, self.filters)
        aux_index = max([p.index for p in plans if p.reduction], default=len(plans) * 2 // 3)
        aux_logits = None
        for plan in plans:
            c = plan.channels
            if plan.reduction:
                reduced = self.factorized_reduce(f"L{plan.index}-reduce", states[-1][0], c)
                states = [(states[-1][0], states[-1][1], True), (reduced, c, False)]
            (x0, c0, big0), (x1, c1, _) = states
            if big0:
                x0 = self.factorized_reduce(f"L{plan.index}-cal0", x0, c)
            elif c0 != c:
                x0 = self.relu_conv_bn(f"L{plan.index}-cal0", x0, c)
            if c1 != c:
                x1 = self.relu_conv_bn(f"L{plan.index}-cal1", x1, c)
            out = self.cell(plan.index, plan.reduction, [x0, x1], c)
            states = [states[-1], (out, c, False)]
            if auxiliary and plan.index == aux_index:
                aux_logits = _aux_head(out, num_classes)
        h = keras.layers.ReLU()(states[-1][0])
        h = keras.layers.GlobalAveragePooling2D()(h)
        logits = keras.layers.Dense(num_classes, name="head")(h)
        return [logits, aux_logits] if auxiliary else logits


def build_child(arch: Architecture, num_classes: int, image_shape, num_layers: int = 6,
                filters: int = 20, stem_multiplier: int = 3, name: str = "child", *,
                auxiliary: bool = False, drop_path: float = 0.0) -> keras.Model:
    """The standalone network of `arch` at the given depth and width (logits out).

    Args:
        auxiliary: add DARTS' auxiliary head after the last reduction cell; the model then
            returns ``[logits, aux_logits]`` (ENAS micro only).
        drop_path: maximum drop-path probability of a non-identity op (training only; the
            last cell uses it, earlier cells proportionally less; ENAS micro only).
    """
    if arch.space_name == "nb201":
        from di_nas.child.nb201 import build_nb201_child

        if auxiliary or drop_path:
            raise ValueError("auxiliary head and drop path are built for enas_micro only")
        return build_nb201_child(arch, num_classes, image_shape, num_cells=num_layers,
                                 filters=filters, name=name)
    inputs = keras.Input(shape=tuple(image_shape), name="images")
    builder = _Builder(arch, num_layers, filters, stem_multiplier, drop_path, num_layers + 2)
    outputs = builder.build(inputs, num_classes, auxiliary=auxiliary)
    return keras.Model(inputs, outputs, name=name)


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
