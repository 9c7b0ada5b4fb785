"""Standalone networks of one architecture (no switches): final training and export.

`build_child` builds a functional Keras model with the same topology as the supernet's path,
at any depth and width; its layers are named after the supernet's sites, so
`load_path_weights` can copy a path's weights into it (tests use this to show that the
supernet computes exactly the child). Batch norm layers are Keras' own (moving statistics for
inference), with the supernet's epsilon.
"""

from __future__ import annotations

import keras
import numpy as np

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
            return h
        if op == 2:
            return keras.layers.AveragePooling2D(3, 1, padding="same")(h)
        if op == 3:
            return keras.layers.MaxPooling2D(3, 1, padding="same")(h)
        return h

    def cell(self, index, reduction, states, filters):
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

    def build(self, inputs, num_classes):
        stem_c = self.filters * self.stem_multiplier
        x = keras.layers.Conv2D(stem_c, 3, padding="same", use_bias=False,
                                name="stem")(inputs)
        x = _bn("stem-bn")(x)
        states = [(x, stem_c, False), (x, stem_c, False)]
        for plan in enas_layers(self.num_layers, self.filters):
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
        h = keras.layers.ReLU()(states[-1][0])
        h = keras.layers.GlobalAveragePooling2D()(h)
        return keras.layers.Dense(num_classes, name="head")(h)


def build_child(arch: Architecture, num_classes: int, image_shape, num_layers: int = 6,
                filters: int = 20, stem_multiplier: int = 3, name: str = "child") -> keras.Model:
    """The standalone network of `arch` at the given depth and width (logits out)."""
    if arch.space_name == "nb201":
        from di_nas.child_nb201 import build_nb201_child

        return build_nb201_child(arch, num_classes, image_shape, num_cells=num_layers,
                                 filters=filters, name=name)
    inputs = keras.Input(shape=tuple(image_shape), name="images")
    builder = _Builder(arch, num_layers, filters, stem_multiplier, 0.0, num_layers + 2)
    logits = builder.build(inputs, num_classes)
    return keras.Model(inputs, logits, name=name)


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
        kernel = np.concatenate([v for _, v in sorted(parts)], axis=2)
        child.get_layer(layer_name).kernel.assign(kernel)
