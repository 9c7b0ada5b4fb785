"""The ENAS micro-cell supernet (Pham et al., 2018, reference code's micro search network).

Every node input is one `tf.switch_case` over the readable states and every op one
`tf.switch_case` over the candidate ops, so only the sampled path is computed. Kernels are kept
per (layer, node, slot, op, stack) and per chosen input, as in the ENAS reference code, unless
`share_across_inputs`. Separable convs are ENAS's: twice (ReLU, depthwise, pointwise, BN), built
as depthwise + 1x1 so that DI sees the pointwise kernel's input. A cell sums 1x1 convs of its
loose-end nodes (equal to ENAS's concat + 1x1 conv) followed by batch norm.

The cell output differs from ENAS's on one point: ENAS concatenates every state that no node
reads, the two cell inputs included; here only unread *nodes* are concatenated
(`search_space.enas_micro.loose_ends`), and a cell input no node reads is dropped. Kept
because the supernet, the standalone child, the drawings and every saved architecture share
this one rule (changing it changes the network of every saved architecture and checkpoint), and
because ENAS's rule adds an unsearched copy of the previous cells' outputs to the cell output
whenever the sampled nodes ignore them, so the output is then partly independent of the sampled
ops. Its effect on search results has not been measured here.

With `cell_residual` (the digits default, not ENAS's) a cell adds its second input (the
previous cell's output, calibrated) to its output. Under uniformly sampled paths, every
architecture then shares one representation that no sampled op can change, and weight sharing
learns several times faster on a short budget (measured in the commit that added it). It
adds no weights.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

from di_nas.ops.base import weighted
from di_nas.search_space import enas_micro as space_lib
from di_nas.supernet import banks as B
from di_nas.supernet import functional as F
from di_nas.supernet.base import Supernet
from di_nas.supernet.layout import enas_layers

OPS = space_lib.OPS
SEP_OPS = weighted(OPS)  # Op index -> the separable convs (the only ops with weights).


def op_name(layer: int, node: int, slot: int, op: int) -> str:
    """Site/layer prefix of op `op` on `slot` of `node` in the cell at `layer`."""
    return f"L{layer}-n{node + 2}-{'xy'[slot]}-{OPS[op].short}"


def sep_names(layer: int, node: int, slot: int, op: int, stack: int) -> str:
    return f"{op_name(layer, node, slot, op)}-s{stack}"


def build_supernet(num_classes: int, image_shape, space_cfg, seed: int = 0):
    """The registry's builder: reads `num_layers`, `filters`, `stem_multiplier`,
    `share_across_inputs`, `bn_affine` and `cell_residual` from `space_cfg` (a
    `config.SpaceConfig`)."""
    return EnasMicroSupernet(
        num_classes, image_shape, num_layers=space_cfg.num_layers, filters=space_cfg.filters,
        stem_multiplier=space_cfg.stem_multiplier,
        share_across_inputs=space_cfg.share_across_inputs, seed=seed,
        bn_affine=space_cfg.bn_affine, cell_residual=space_cfg.cell_residual)


class StateList:
    """The states a node may read, as a `TensorList`, read at an index chosen in the graph.

    A `tf.switch_case` over the states would be exact too, but its gradient is a dense zero
    tensor for every state not read, summed into every state's gradient: 30 full-size zeros a
    cell. A list's gradient keeps unread entries unset, so only what was read costs anything.
    """

    def __init__(self, states, capacity: int):
        self.shape, self.dtype = states[0].shape, states[0].dtype
        # A static element shape wherever the batch is known (always under XLA): a shape
        # computed in the graph makes XLA's value inference evaluate the network that feeds
        # it at compile time, which took minutes for even a one-cell supernet on a CPU.
        self.element_shape = (tf.constant(self.shape.as_list(), tf.int32)
                              if self.shape.is_fully_defined() else tf.shape(states[0]))
        # A list of fixed length, written by index: XLA (TPUs, `--jit_compile`) compiles
        # that form exactly, while the gradient of a pushed-back list comes out wrong there.
        self.handle = tf.raw_ops.TensorListReserve(
            element_shape=self.element_shape, num_elements=capacity, element_dtype=self.dtype)
        self.size = 0
        for state in states:
            self.append(state)

    def append(self, state) -> None:
        self.handle = tf.raw_ops.TensorListSetItem(
            input_handle=self.handle, index=self.size, item=state)
        self.size += 1

    def read(self, index):
        state = tf.raw_ops.TensorListGetItem(
            input_handle=self.handle, index=index, element_shape=self.element_shape,
            element_dtype=self.dtype)
        return state if self.shape.is_fully_defined() else tf.ensure_shape(state, self.shape)


class EnasMicroSupernet(Supernet):
    """Supernet over `enas_micro`; `num_layers` normal cells plus 2 reduction cells."""

    space = space_lib.SPACE

    def __init__(self, num_classes, image_shape, num_layers: int = 6, filters: int = 20,
                 stem_multiplier: int = 3, share_across_inputs: bool = False, seed: int = 0,
                 bn_affine: bool = False, cell_residual: bool = False, **kwargs):
        self.num_layers = num_layers
        self.cell_residual = bool(cell_residual)
        self.filters = filters
        self.stem_multiplier = stem_multiplier
        self.share_across_inputs = share_across_inputs
        self.layers_plan = enas_layers(num_layers, filters)
        super().__init__(num_classes, image_shape, seed=seed, bn_affine=bn_affine, **kwargs)

    # Declaration -----------------------------------------------------------------------------

    def _declare(self):
        stem_c = self.filters * self.stem_multiplier
        self.site("stem-kernel", B.CONV, (3, 3, self.image_shape[-1], stem_c))
        self._bn_sites("stem-bn", stem_c)
        shapes = [(stem_c, False), (stem_c, False)]  # (channels, at higher resolution).
        for plan in self.layers_plan:
            c = plan.channels
            if plan.reduction:
                self._reduce_sites(f"L{plan.index}-reduce", shapes[-1][0], c)
                shapes = [(shapes[-1][0], True), (c, False)]
            self._calibrate_sites(plan.index, shapes, c)
            cell = 1 if plan.reduction else 0
            for node in range(space_lib.NUM_NODES):
                for slot in range(2):
                    in_pos, op_pos = space_lib.decision_index(cell, node, slot)
                    choices = 1 if self.share_across_inputs else node + 2
                    placement = dict(num_choices=choices,
                                     input_pos=-1 if self.share_across_inputs else in_pos,
                                     op_pos=op_pos)
                    for op, sep in SEP_OPS.items():
                        k = sep.kernel_size
                        for stack in range(sep.stacks):
                            name = sep_names(plan.index, node, slot, op, stack)
                            self.site(f"{name}-dw-kernel", B.DEPTHWISE, (k, k, c, 1),
                                      op_value=op, **placement)
                            self.site(f"{name}-pw-kernel", B.CONV, (1, 1, c, c),
                                      op_value=op, **placement)
                            self._bn_sites(f"{name}-bn", c, op_value=op, **placement)
            for node in range(space_lib.NUM_NODES):
                self.site(f"L{plan.index}-combine-n{node + 2}-kernel", B.CONV, (1, 1, c, c),
                          loose_pos=cell * space_lib.NUM_NODES + node)
            self._bn_sites(f"L{plan.index}-combine-bn", c)
            shapes = [shapes[-1], (c, False)]
        self._head_sites(self.layers_plan[-1].channels)

    def _reduce_sites(self, name, c_in, c_out):
        self.site(f"{name}-a-kernel", B.CONV, (1, 1, c_in, c_out // 2))
        self.site(f"{name}-b-kernel", B.CONV, (1, 1, c_in, c_out - c_out // 2))
        self._bn_sites(f"{name}-bn", c_out)

    def _calibrate_sites(self, layer, shapes, c):
        (c0, big0), (c1, _) = shapes
        if big0:
            self._reduce_sites(f"L{layer}-cal0", c0, c)
        elif c0 != c:
            self.site(f"L{layer}-cal0-kernel", B.CONV, (1, 1, c0, c))
            self._bn_sites(f"L{layer}-cal0-bn", c)
        if c1 != c:
            self.site(f"L{layer}-cal1-kernel", B.CONV, (1, 1, c1, c))
            self._bn_sites(f"L{layer}-cal1-bn", c)

    # Forward ---------------------------------------------------------------------------------

    def loose_flags(self, arch):
        """`[2 * NUM_NODES]`: node j of cell c is a loose end iff no node of c reads it."""
        flags = []
        for cell in range(2):
            inputs = tf.stack([arch[space_lib.decision_index(cell, n, s)[0]]
                               for n in range(space_lib.NUM_NODES) for s in range(2)])
            targets = tf.range(2, space_lib.NUM_NODES + 2, dtype=tf.int32)
            read = tf.reduce_any(tf.equal(inputs[:, None], targets[None, :]), axis=0)
            flags.append(tf.logical_not(read))
        return tf.concat(flags, axis=0)

    def _relu_conv_bn(self, rec, inputs, name, x):
        return self._bn(rec, f"{name}-bn", self._conv(rec, inputs, name, tf.nn.relu(x)))

    def _factorized_reduce(self, rec, inputs, name, x):
        a, b = F.subsample_pair(tf.nn.relu(x))
        out = tf.concat([self._conv(rec, inputs, f"{name}-a", a),
                         self._conv(rec, inputs, f"{name}-b", b)], axis=-1)
        return self._bn(rec, f"{name}-bn", out)

    def _forward(self, images, arch, rec, inputs):
        x = self._bn(rec, "stem-bn", self._conv(rec, inputs, "stem", images, 3))
        states = [x, x]
        loose = self.loose_flags(arch)
        for plan in self.layers_plan:
            if plan.reduction:
                reduced = self._factorized_reduce(rec, inputs, f"L{plan.index}-reduce",
                                                  states[-1])
                states = [states[-1], reduced]
            x0, x1 = states
            if f"L{plan.index}-cal0-a-kernel" in self.sites:
                x0 = self._factorized_reduce(rec, inputs, f"L{plan.index}-cal0", x0)
            elif f"L{plan.index}-cal0-kernel" in self.sites:
                x0 = self._relu_conv_bn(rec, inputs, f"L{plan.index}-cal0", x0)
            if f"L{plan.index}-cal1-kernel" in self.sites:
                x1 = self._relu_conv_bn(rec, inputs, f"L{plan.index}-cal1", x1)
            out = self._cell(rec, inputs, arch, loose, plan, [x0, x1])
            states = [states[-1], out]
        return self._head(rec, inputs, tf.reduce_mean(tf.nn.relu(states[-1]), axis=[1, 2]))

    def _cell(self, rec, inputs, arch, loose, plan, nodes):
        cell = 1 if plan.reduction else 0
        nodes = list(nodes)
        readable = StateList(nodes, capacity=len(nodes) + space_lib.NUM_NODES)
        for node in range(space_lib.NUM_NODES):
            total = 0.0
            for slot in range(2):
                in_pos, op_pos = space_lib.decision_index(cell, node, slot)
                h = readable.read(arch[in_pos])
                total += self._slot(rec, inputs, arch[op_pos], h, plan, node, slot)
            nodes.append(total)
            readable.append(total)
        out = 0.0
        for node in range(space_lib.NUM_NODES):
            name = f"L{plan.index}-combine-n{node + 2}"
            out += self._loose_conv(rec, inputs, name, nodes[node + 2],
                                    loose[cell * space_lib.NUM_NODES + node])
        out = self._bn(rec, f"L{plan.index}-combine-bn", out)
        return out + nodes[1] if self.cell_residual else out

    def _loose_conv(self, rec, inputs, name, h, is_loose):
        kernel = self.w(rec, f"{name}-kernel")

        def used():
            r = tf.nn.relu(h)
            x = inputs.conv(r, 1)
            return (F.conv(r, kernel), x) if x is not None else (F.conv(r, kernel),)

        def unused():
            zero = tf.zeros_like(h[..., :kernel.shape[-1]])
            if not inputs.enabled:
                return (zero,)
            return zero, tf.zeros(self._input_shape(f"{name}-kernel", inputs))

        result = tf.cond(is_loose, used, unused)
        if len(result) > 1:
            self.note_input(rec, f"{name}-kernel", result[1])
        return result[0]

    def _slot(self, rec, inputs, op, h, plan, node, slot):
        """One op of a node: a switch over the candidate ops; returns its output."""
        names = {o: op_name(plan.index, node, slot, o) for o in SEP_OPS}
        op_stats = {o: [f"{names[o]}-s{s}-{part}-kernel" for s in range(sep.stacks)
                        for part in ("dw", "pw")] for o, sep in SEP_OPS.items()}
        stat_names = [n for o in SEP_OPS for n in op_stats[o]]

        def sep_branch(o):
            k = SEP_OPS[o].kernel_size
            x, stats = h, {}
            for s in range(SEP_OPS[o].stacks):
                name = f"{names[o]}-s{s}"
                r = tf.nn.relu(x)
                stats[f"{name}-dw-kernel"] = inputs.depthwise(r, k)
                d = F.depthwise(r, self.w(rec, f"{name}-dw-kernel"))
                stats[f"{name}-pw-kernel"] = inputs.conv(d, 1)
                x = self._bn(rec, f"{name}-bn", F.conv(d, self.w(rec, f"{name}-pw-kernel")))
            return x, stats

        shapes = [self._input_shape(n, inputs) for n in stat_names] if inputs.enabled else []
        sizes = [int(np.prod(shape)) for shape in shapes]
        size_of = dict(zip(stat_names, sizes, strict=True)) if inputs.enabled else {}

        def branch(o):
            if o in SEP_OPS:
                out, stats = sep_branch(o)
            else:
                out, stats = F.parameter_free(OPS[o], h), {}
            if not inputs.enabled:
                return out
            # All input statistics of the slot packed in one vector (zeros for ops not taken),
            # cut off from the gradient: one extra output instead of eight keeps tracing fast.
            if not stats:
                return out, tf.zeros([sum(sizes)])
            flat = []  # Each separable op's statistics are one block: one zeros per other op.
            for other, mine in op_stats.items():
                flat += ([tf.reshape(stats[n], [-1]) for n in mine] if other == o
                         else [tf.zeros([sum(size_of[n] for n in mine)])])
            return out, tf.stop_gradient(tf.concat(flat, axis=0))

        result = tf.switch_case(op, [functools.partial(branch, o) for o in range(len(OPS))])
        if not inputs.enabled:
            return result
        out, flat = result
        for name, shape, part in zip(stat_names, shapes, tf.split(flat, sizes), strict=True):
            self.note_input(rec, name, tf.reshape(part, shape))
        return out

    def _input_shape(self, name, inputs):
        return inputs.shape(self.sites[name][0])
