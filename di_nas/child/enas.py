"""The standalone ENAS micro network of one architecture (no switches): final training, export.

`build_child` builds a functional Keras model with the same topology as the supernet's path,
at any depth and width; its layers are named after the supernet's sites, so
`load_path_weights` can copy a path's weights into it (tests use this to show that the
supernet computes exactly the child). Batch norm layers are Keras' own (moving statistics for
inference), with the supernet's epsilon.

For final training (DARTS/ENAS recipe) a child can also have an auxiliary head after the last
reduction cell (the model then returns ``[logits, aux_logits]``) and drop path on every
non-identity op of a cell; both are off by default, so the default child is exactly the
supernet's path. Imports Keras, `ops`, `search_space` and the supernet's layout and site names;
never training loops or flags.
"""

from __future__ import annotations

import keras

from di_nas.child.base import DropPath
from di_nas.ops import layers
from di_nas.ops.base import IDENTITY
from di_nas.search_space import enas_micro as enas_space
from di_nas.search_space.base import Architecture
from di_nas.supernet.enas import OPS, op_name
from di_nas.supernet.layout import enas_layers


def _conv1x1(filters, name, strides=1):
    return layers.conv(filters, 1, name, strides)


def _aux_head(x, num_classes: int):
    """DARTS' auxiliary head, sized from the feature map (any image size, even 2x2 maps)."""
    h = keras.layers.ReLU()(x)
    if min(h.shape[1], h.shape[2]) >= 5:
        h = keras.layers.AveragePooling2D(5, strides=3, padding="valid")(h)
    h = layers.bn("aux-conv0-bn")(_conv1x1(128, "aux-conv0")(h))
    h = keras.layers.ReLU()(h)
    h = keras.layers.Conv2D(768, (h.shape[1], h.shape[2]), padding="valid", use_bias=False,
                            name="aux-conv1")(h)
    h = keras.layers.ReLU()(layers.bn("aux-conv1-bn")(h))
    h = keras.layers.Flatten()(h)
    return keras.layers.Dense(num_classes, name="aux-head", dtype="float32")(h)


class _Builder:
    """Builds an ENAS micro child; names match `EnasMicroSupernet` sites."""

    def __init__(self, arch: Architecture, num_layers, filters, stem_multiplier, drop_path,
                 total_cells, cell_residual=False):
        self.values = arch.values
        self.cell_residual = cell_residual
        self.num_layers = num_layers
        self.filters = filters
        self.stem_multiplier = stem_multiplier
        self.drop_path = drop_path
        self.total_cells = total_cells

    def relu_conv_bn(self, name, x, filters):
        x = keras.layers.ReLU()(x)
        return layers.bn(f"{name}-bn")(_conv1x1(filters, name)(x))

    def factorized_reduce(self, name, x, filters):
        x = keras.layers.ReLU()(x)
        a = keras.layers.Lambda(lambda t: t[:, ::2, ::2, :])(x)
        b = keras.layers.ZeroPadding2D(((0, 1), (0, 1)))(x)
        b = keras.layers.Lambda(lambda t: t[:, 1:, 1:, :][:, ::2, ::2, :])(b)
        a = _conv1x1(filters // 2, f"{name}-a")(a)
        b = _conv1x1(filters - filters // 2, f"{name}-b")(b)
        return layers.bn(f"{name}-bn")(keras.layers.Concatenate()([a, b]))

    def op(self, prefix, op, h, filters):
        h = layers.apply(OPS[op], h, filters, prefix)
        return h if OPS[op].kind == IDENTITY else self.drop(prefix, h)  # DARTS: id never drops.

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
                prefix = op_name(index, node, slot, op)
                outs.append(self.op(prefix, op, nodes[self.values[in_pos]], filters))
            nodes.append(keras.layers.Add()(outs))
        loose = enas_space.loose_ends(values)
        outs = [nodes[n + 2] for n in loose]
        h = outs[0] if len(outs) == 1 else keras.layers.Concatenate()(outs)
        h = keras.layers.ReLU()(h)
        h = _conv1x1(filters, f"L{index}-combine")(h)
        h = layers.bn(f"L{index}-combine-bn")(h)
        return keras.layers.Add()([h, states[1]]) if self.cell_residual else h

    def build(self, inputs, num_classes, auxiliary=False):
        """Logits, or ``[logits, aux_logits]`` when ``auxiliary``."""
        stem_c = self.filters * self.stem_multiplier
        x = keras.layers.Conv2D(stem_c, 3, padding="same", use_bias=False,
                                name="stem")(inputs)
        x = layers.bn("stem-bn")(x)
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
        # The head computes in float32 under any mixed-precision policy: float32 logits out.
        logits = keras.layers.Dense(num_classes, name="head", dtype="float32")(h)
        return [logits, aux_logits] if auxiliary else logits


def build_child(arch: Architecture, num_classes: int, image_shape, num_layers: int = 6,
                filters: int = 20, stem_multiplier: int = 3, name: str = "child", *,
                auxiliary: bool = False, drop_path: float = 0.0,
                cell_residual: bool = False) -> keras.Model:
    """The registry's builder: the ENAS micro network of `arch` (see `child.build_child`)."""
    if arch.space_name != enas_space.NAME:
        raise ValueError(f"the enas_micro child needs an enas_micro architecture, got "
                         f"{arch.space_name}")
    inputs = keras.Input(shape=tuple(image_shape), name="images")
    builder = _Builder(arch, num_layers, filters, stem_multiplier, drop_path, num_layers + 2,
                       cell_residual)
    outputs = builder.build(inputs, num_classes, auxiliary=auxiliary)
    return keras.Model(inputs, outputs, name=name)
