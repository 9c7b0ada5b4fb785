"""The standalone NAS-Bench-201 network of one architecture (no switches).

Same macro net as `supernet.nb201.Nb201Supernet`, with layers named after its sites (minus the
`-kernel`/`-gamma`/`-beta`/`-bias` suffix) so `child.load_path_weights` copies a path's weights.
Edges whose op is `none` are left out of their node's sum; a node whose every edge is `none`
outputs zeros (ops reading it still run, as in the supernet, so the two agree exactly).
"""

from __future__ import annotations

import keras

from di_nas.search_space import Architecture
from di_nas.search_space import nb201 as space_lib
from di_nas.supernet.functional import BN_EPSILON
from di_nas.supernet.layout import nb201_stages
from di_nas.supernet.nb201 import AVG_POOL, CONV_OPS, NONE, SKIP, edge_op_name


def _bn(name):
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=BN_EPSILON, name=name)


def _conv(filters, kernel_size, name, strides=1):
    return keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same",
                               use_bias=False, name=name)


def _edge(layer, edge, op, h, filters):
    if op in CONV_OPS:
        name = edge_op_name(layer, edge, op)
        h = keras.layers.ReLU()(h)
        return _bn(f"{name}-bn")(_conv(filters, CONV_OPS[op], name)(h))
    if op == AVG_POOL:
        return keras.layers.AveragePooling2D(3, 1, padding="same")(h)
    assert op == SKIP, op
    return h


def _cell(values, layer, x, filters):
    nodes = [x]
    for dst in range(1, space_lib.NUM_NODES):
        outs = [_edge(layer, edge, values[edge], nodes[src], filters)
                for edge, (src, d) in enumerate(space_lib.EDGES)
                if d == dst and values[edge] != NONE]
        if not outs:
            nodes.append(keras.layers.Lambda(keras.ops.zeros_like)(x))
        elif len(outs) == 1:
            nodes.append(outs[0])
        else:
            nodes.append(keras.layers.Add()(outs))
    return nodes[-1]


def _residual(name, x, filters):
    a = keras.layers.ReLU()(x)
    a = _bn(f"{name}-a-bn")(_conv(filters, 3, f"{name}-a", strides=2)(a))
    b = keras.layers.ReLU()(a)
    b = _bn(f"{name}-b-bn")(_conv(filters, 3, f"{name}-b")(b))
    short = keras.layers.AveragePooling2D(2, 2, padding="same")(x)
    short = _conv(filters, 1, f"{name}-short")(short)
    return keras.layers.Add()([short, b])


def build_nb201_child(arch: Architecture, num_classes: int, image_shape, num_cells: int = 5,
                      filters: int = 16, name: str = "child") -> keras.Model:
    """The NAS-Bench-201 network of `arch` with `num_cells` cells per stage (logits out)."""
    if arch.space_name != space_lib.NAME:
        raise ValueError(f"build_nb201_child needs an nb201 architecture, got {arch.space_name}")
    inputs = keras.Input(shape=tuple(image_shape), name="images")
    x = _bn("stem-bn")(_conv(filters, 3, "stem")(inputs))
    for plan in nb201_stages(num_cells, filters):
        if plan.reduction:
            x = _residual(f"L{plan.index}-res", x, plan.channels)
        else:
            x = _cell(arch.values, plan.index, x, plan.channels)
    h = keras.layers.ReLU()(_bn("head-bn")(x))
    h = keras.layers.GlobalAveragePooling2D()(h)
    logits = keras.layers.Dense(num_classes, name="head")(h)
    return keras.Model(inputs, logits, name=name)
