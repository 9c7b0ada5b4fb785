"""The standalone NAS-Bench-201 network of one architecture (no switches).

Same macro net as `supernet.nb201.Nb201Supernet`, with layers named after its sites (minus the
`-kernel`/`-gamma`/`-beta`/`-bias` suffix) so `child.load_path_weights` copies a path's weights.
Edges whose op is the zero op (`none`) are left out of their node's sum; a node whose every
edge is `none` outputs zeros (ops reading it still run, as in the supernet, so the two agree
exactly). Imports Keras, `ops`, `search_space` and the supernet's layout and site names; never
training loops or flags.
"""

from __future__ import annotations

import keras

from di_nas.ops import layers
from di_nas.ops.base import ZERO
from di_nas.search_space import nb201 as space_lib
from di_nas.search_space.base import Architecture
from di_nas.supernet.layout import nb201_stages
from di_nas.supernet.nb201 import OPS, edge_op_name


def _cell(values, layer, x, filters):
    nodes = [x]
    for dst in range(1, space_lib.NUM_NODES):
        outs = [layers.apply(OPS[values[edge]], nodes[src], filters,
                             edge_op_name(layer, edge, values[edge]))
                for edge, (src, d) in enumerate(space_lib.EDGES)
                if d == dst and OPS[values[edge]].kind != ZERO]
        if not outs:
            nodes.append(keras.layers.Lambda(keras.ops.zeros_like)(x))
        elif len(outs) == 1:
            nodes.append(outs[0])
        else:
            nodes.append(keras.layers.Add()(outs))
    return nodes[-1]


def _residual(name, x, filters):
    a = keras.layers.ReLU()(x)
    a = layers.bn(f"{name}-a-bn")(layers.conv(filters, 3, f"{name}-a", strides=2)(a))
    b = keras.layers.ReLU()(a)
    b = layers.bn(f"{name}-b-bn")(layers.conv(filters, 3, f"{name}-b")(b))
    short = keras.layers.AveragePooling2D(2, 2, padding="same")(x)
    short = layers.conv(filters, 1, f"{name}-short")(short)
    return keras.layers.Add()([short, b])


def build_nb201_child(arch: Architecture, num_classes: int, image_shape, num_cells: int = 5,
                      filters: int = 16, name: str = "child") -> keras.Model:
    """The NAS-Bench-201 network of `arch` with `num_cells` cells per stage (logits out)."""
    if arch.space_name != space_lib.NAME:
        raise ValueError(f"build_nb201_child needs an nb201 architecture, got {arch.space_name}")
    inputs = keras.Input(shape=tuple(image_shape), name="images")
    x = layers.bn("stem-bn")(layers.conv(filters, 3, "stem")(inputs))
    for plan in nb201_stages(num_cells, filters):
        if plan.reduction:
            x = _residual(f"L{plan.index}-res", x, plan.channels)
        else:
            x = _cell(arch.values, plan.index, x, plan.channels)
    h = keras.layers.ReLU()(layers.bn("head-bn")(x))
    h = keras.layers.GlobalAveragePooling2D()(h)
    logits = keras.layers.Dense(num_classes, name="head", dtype="float32")(h)  # float32 out
    return keras.Model(inputs, logits, name=name)


def build_child(arch: Architecture, num_classes: int, image_shape, num_layers: int = 5,
                filters: int = 16, stem_multiplier: int = 3, name: str = "child", *,
                auxiliary: bool = False, drop_path: float = 0.0,
                cell_residual: bool = False) -> keras.Model:
    """The registry's builder: `num_layers` is read as cells per stage; there is no stem
    multiplier or cell residual (both ignored, as the nb201 supernet does), auxiliary head or
    drop path (these raise ValueError)."""
    del stem_multiplier, cell_residual  # The NAS-Bench-201 stem has `filters` channels.
    if auxiliary or drop_path:
        raise ValueError("auxiliary head and drop path are built for enas_micro only")
    return build_nb201_child(arch, num_classes, image_shape, num_cells=num_layers,
                             filters=filters, name=name)
