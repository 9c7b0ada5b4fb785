"""The NAS-Bench-201 supernet (Dong & Yang, 2020): the benchmark's macro net over one shared cell.

Stem conv3x3 + BN, three stages of `num_cells` cells with a residual reduction block between
stages (ReLU-conv3x3/2-BN, ReLU-conv3x3-BN, shortcut avgpool 2x2/2 + conv1x1), then
BN-ReLU-global pool-dense. Every cell follows the same 6 edge decisions; each edge is one
`tf.switch_case` over the 5 candidate ops, so only the sampled op runs and one trace serves
every architecture. The conv ops (ReLU-conv-BN) own their kernels per (cell, edge, op) and are
active only when their edge takes them. Edge inputs are fixed (node j reads every node i < j),
so sites have one row each.
"""

from __future__ import annotations

import functools

import tensorflow as tf

from di_nas.ops.base import weighted
from di_nas.search_space import nb201 as space_lib
from di_nas.supernet import banks as B
from di_nas.supernet import functional as F
from di_nas.supernet.base import Supernet
from di_nas.supernet.layout import nb201_stages

OPS = space_lib.OPS
CONV_OPS = weighted(OPS)  # Op index -> the convs (the only ops with weights).


def edge_op_name(layer: int, edge: int, op: int) -> str:
    """Site/layer prefix of op `op` on `edge` of the cell at `layer`."""
    return f"L{layer}-e{edge}-{OPS[op].name.replace('_', '')}"


def build_supernet(num_classes: int, image_shape, space_cfg, seed: int = 0):
    """The registry's builder: reads `num_cells`, `filters` and `bn_affine` from `space_cfg`
    (a `config.SpaceConfig`)."""
    return Nb201Supernet(num_classes, image_shape, num_cells=space_cfg.num_cells,
                         filters=space_cfg.filters, seed=seed, bn_affine=space_cfg.bn_affine)


class Nb201Supernet(Supernet):
    """Supernet over `nb201`; 3 stages of `num_cells` cells at `filters`, 2x, 4x channels."""

    space = space_lib.SPACE

    def __init__(self, num_classes, image_shape, num_cells: int = 5, filters: int = 16,
                 seed: int = 0, bn_affine: bool = False, **kwargs):
        self.num_cells = num_cells
        self.filters = filters
        self.layers_plan = nb201_stages(num_cells, filters)
        super().__init__(num_classes, image_shape, seed=seed, bn_affine=bn_affine, **kwargs)

    # Declaration -----------------------------------------------------------------------------

    def _declare(self):
        c = self.filters
        self.site("stem-kernel", B.CONV, (3, 3, self.image_shape[-1], c))
        self._bn_sites("stem-bn", c)
        for plan in self.layers_plan:
            if plan.reduction:
                name = f"L{plan.index}-res"
                self.site(f"{name}-a-kernel", B.CONV, (3, 3, c, plan.channels))
                self._bn_sites(f"{name}-a-bn", plan.channels)
                self.site(f"{name}-b-kernel", B.CONV, (3, 3, plan.channels, plan.channels))
                self._bn_sites(f"{name}-b-bn", plan.channels)
                self.site(f"{name}-short-kernel", B.CONV, (1, 1, c, plan.channels))
                c = plan.channels
                continue
            for edge in range(len(space_lib.EDGES)):
                for op, conv in CONV_OPS.items():
                    name = edge_op_name(plan.index, edge, op)
                    k = conv.kernel_size
                    self.site(f"{name}-kernel", B.CONV, (k, k, c, c), op_pos=edge, op_value=op)
                    self._bn_sites(f"{name}-bn", c, op_pos=edge, op_value=op)
        self._bn_sites("head-bn", c)
        self._head_sites(c)

    # Forward ---------------------------------------------------------------------------------

    def _forward(self, images, arch, rec, inputs):
        x = self._bn(rec, "stem-bn", self._conv(rec, inputs, "stem", images, 3))
        for plan in self.layers_plan:
            if plan.reduction:
                x = self._residual(rec, inputs, f"L{plan.index}-res", x)
            else:
                x = self._cell(rec, inputs, arch, plan.index, x)
        h = tf.nn.relu(self._bn(rec, "head-bn", x))
        return self._head(rec, inputs, tf.reduce_mean(h, axis=[1, 2]))

    def _residual(self, rec, inputs, name, x):
        a = self._bn(rec, f"{name}-a-bn",
                     self._conv(rec, inputs, f"{name}-a", tf.nn.relu(x), 3, 2))
        b = self._bn(rec, f"{name}-b-bn",
                     self._conv(rec, inputs, f"{name}-b", tf.nn.relu(a), 3))
        short = tf.nn.avg_pool2d(x, 2, 2, "SAME")
        return self._conv(rec, inputs, f"{name}-short", short) + b

    def _cell(self, rec, inputs, arch, layer, x):
        nodes = [x]
        for dst in range(1, space_lib.NUM_NODES):
            total = 0.0
            for edge, (src, d) in enumerate(space_lib.EDGES):
                if d == dst:
                    total += self._edge(rec, inputs, arch[edge], nodes[src], layer, edge)
            nodes.append(total)
        return nodes[-1]

    def _edge(self, rec, inputs, op, h, layer, edge):
        """One edge: a switch over the candidate ops; returns its output."""
        stat_names = [f"{edge_op_name(layer, edge, o)}-kernel" for o in CONV_OPS]

        def branch(o):
            stats = {}
            if o in CONV_OPS:
                name = edge_op_name(layer, edge, o)
                r = tf.nn.relu(h)
                stats[f"{name}-kernel"] = inputs.conv(r, CONV_OPS[o].kernel_size)
                out = self._bn(rec, f"{name}-bn", F.conv(r, self.w(rec, f"{name}-kernel")))
            else:
                out = F.parameter_free(OPS[o], h)
            if not inputs.enabled:
                return out
            flat = [stats[n] if n in stats else tf.zeros(self._input_shape(n, inputs))
                    for n in stat_names]
            return (out, *flat)

        result = tf.switch_case(op, [functools.partial(branch, o) for o in range(len(OPS))])
        if not inputs.enabled:
            return result
        for name, x_mean in zip(stat_names, result[1:], strict=True):
            self.note_input(rec, name, x_mean)
        return result[0]

    def _input_shape(self, name, inputs):
        return inputs.shape(self.sites[name][0])
