"""Weight banks: every shared weight of a supernet lives in a few stacked variables.

A *bank* is one variable `[rows, *kernel_shape]` holding all kernels of one kind and shape
(e.g. every 3x3 depthwise kernel at 20 channels). A *site* is one place in the network that
uses a kernel of the bank; it owns `num_choices` consecutive rows, one per input it may read
(ENAS keeps an op's weights per chosen input), and is *active* when the sampled architecture
takes its op. A forward pass gathers, per bank, one row per site in a single `tf.gather`, so
the update step works on small dense row blocks: a handful of ops per bank, whatever the
architecture, and weights off the path are never touched.

This module knows nothing of cells or ops; the supernets declare sites and read rows.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf

# Kinds of banks: how a kernel acts on its input (decides the projector's shape).
CONV, DEPTHWISE, DENSE, VECTOR_ONES, VECTOR_ZEROS = (
    "conv", "depthwise", "dense", "vector_ones", "vector_zeros")


@dataclasses.dataclass(frozen=True)
class Site:
    """A use of a bank: rows `base .. base + num_choices - 1`."""

    name: str
    base: int
    num_choices: int
    input_pos: int  # Position in the architecture of the input decision, or -1.
    op_pos: int  # Position of the op decision that must equal `op_value`, or -1.
    op_value: int
    loose_pos: int  # Index into the supernet's loose-end flags, or -1.


class Bank:
    """Declares sites at build time; holds the variable once `create` is called."""

    def __init__(self, name: str, kind: str, shape):
        self.name = name
        self.kind = kind
        self.shape = tuple(int(s) for s in shape)
        self.sites: list[Site] = []
        self.rows = 0
        self.variable = None

    def add_site(self, name: str, num_choices: int = 1, input_pos: int = -1, op_pos: int = -1,
                 op_value: int = 0, loose_pos: int = -1) -> int:
        """Registers a site; returns its position in the bank's gathered rows."""
        self.sites.append(Site(name, self.rows, num_choices, input_pos, op_pos, op_value,
                               loose_pos))
        self.rows += num_choices
        return len(self.sites) - 1

    @property
    def projected(self) -> bool:
        return self.kind in (CONV, DEPTHWISE, DENSE)

    def searched_rows(self) -> np.ndarray:
        """`[rows]` bool: whether each row belongs to a searched op's site (one an architecture
        uses only when it takes that op), not to a fixed one every architecture uses."""
        out = np.zeros([self.rows], bool)
        for s in self.sites:
            out[s.base:s.base + s.num_choices] = s.op_pos >= 0
        return out

    @property
    def d_in(self) -> int:
        if self.kind == CONV:
            return self.shape[0] * self.shape[1] * self.shape[2]
        if self.kind == DEPTHWISE:
            return self.shape[0] * self.shape[1]
        if self.kind == DENSE:
            return self.shape[0]
        return 0

    def initial_value(self, rng: np.random.Generator) -> np.ndarray:
        shape = (self.rows, *self.shape)
        if self.kind == VECTOR_ONES:
            return np.ones(shape, np.float32)
        if self.kind == VECTOR_ZEROS:
            return np.zeros(shape, np.float32)
        fan_in = {CONV: self.d_in, DEPTHWISE: self.d_in, DENSE: self.shape[0]}[self.kind]
        # He-normal, truncated at two standard deviations (as Keras' HeNormal).
        std = math.sqrt(2.0 / fan_in) / 0.87962566103423978
        values = rng.standard_normal(shape)
        while np.any(np.abs(values) > 2):
            bad = np.abs(values) > 2
            values[bad] = rng.standard_normal(int(bad.sum()))
        return (values * std).astype(np.float32)

    def static_arrays(self, arch_len: int, num_loose: int):
        """Numpy index arrays that turn an architecture into rows and activity in-graph."""
        base = np.array([s.base for s in self.sites], np.int32)
        input_pos = np.array([s.input_pos if s.input_pos >= 0 else arch_len
                              for s in self.sites], np.int32)
        op_pos = np.array([s.op_pos if s.op_pos >= 0 else arch_len for s in self.sites],
                          np.int32)
        op_value = np.array([s.op_value if s.op_pos >= 0 else 0 for s in self.sites], np.int32)
        loose_pos = np.array([s.loose_pos if s.loose_pos >= 0 else num_loose
                              for s in self.sites], np.int32)
        return base, input_pos, op_pos, op_value, loose_pos


class PathRecord:
    """What one forward pass used: per bank, row indices, the gathered rows, activity, and the
    input statistics the sites saw (filled in by the network as it runs)."""

    def __init__(self):
        self.indices: dict[str, tf.Tensor] = {}
        self.rows: dict[str, tf.Tensor] = {}
        self.row_list: dict[str, list[tf.Tensor]] = {}
        self.active: dict[str, tf.Tensor] = {}
        self.inputs: dict[str, list] = {}
        # Per-site statistic shape rule of the recorder that filled `inputs` (set by the
        # supernet's forward: `functional.InputRecorder.shape`).
        self.input_shape = None

    def row(self, bank: Bank, position: int) -> tf.Tensor:
        return self.row_list[bank.name][position]

    def set_input(self, bank: Bank, position: int, x_mean: tf.Tensor) -> None:
        self.inputs[bank.name][position] = x_mean

    def stacked_inputs(self, bank: Bank) -> tf.Tensor:
        """Input statistics `[groups, sites, ...]`; sites that recorded none get zeros (no
        update)."""
        shape = self.input_shape(bank)
        xs = [x if x is not None else tf.zeros(shape) for x in self.inputs[bank.name]]
        return tf.stack(xs, axis=1)


def input_shape(bank: Bank) -> tuple[int, ...]:
    """Shape of one site's mean input: conv/dense `[d_in]`, depthwise `[C, k*k]` (a second
    moment adds the last dimension again: `functional.InputRecorder.shape`)."""
    if bank.kind == DEPTHWISE:
        return (bank.shape[2], bank.shape[0] * bank.shape[1])
    return (bank.d_in,)


def gather_path(banks, arch: tf.Tensor, loose: tf.Tensor, arch_len: int) -> PathRecord:
    """Gathers every bank's rows for `arch`; `loose` is the `[num_loose]` bool loose-end flags."""
    record = PathRecord()
    arch_ext = tf.concat([tf.cast(arch, tf.int32), [0]], axis=0)
    loose_ext = tf.concat([loose, [True]], axis=0)
    num_loose = int(loose.shape[0])
    for bank in banks:
        base, input_pos, op_pos, op_value, loose_pos = bank.static_arrays(arch_len, num_loose)
        idx = base + tf.gather(arch_ext, input_pos)
        active = tf.logical_and(tf.equal(tf.gather(arch_ext, op_pos), op_value),
                                tf.gather(loose_ext, loose_pos))
        rows = tf.gather(bank.variable, idx)
        record.indices[bank.name] = idx
        record.rows[bank.name] = rows
        record.row_list[bank.name] = tf.unstack(rows, num=len(bank.sites), axis=0)
        record.active[bank.name] = active
        record.inputs[bank.name] = [None] * len(bank.sites)
    return record
