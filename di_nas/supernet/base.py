"""The `Supernet` base: a Keras model whose weights live in banks, one trace for every arch.

Subclasses declare their sites in `_declare()` (through `self.site(...)`) and compute the
network in `_forward(images, arch, record, inputs)`, reading rows with `self.w(record, name)`.
The architecture is an int32 tensor: ops and inputs are picked in the graph, so one
`tf.function` trace serves every architecture.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from di_nas.search_space.base import Architecture, SearchSpace
from di_nas.supernet import banks as banks_lib
from di_nas.supernet import functional as F
from di_nas.supernet import xla
from di_nas.supernet.functional import InputRecorder


class Supernet(keras.Model):
    """Base class; see the module docstring."""

    space: SearchSpace  # Each subclass sets the space it searches.

    def __init__(self, num_classes: int, image_shape, seed: int = 0, bn_affine: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        self.bn_affine = bool(bn_affine)
        self.num_classes = int(num_classes)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.bank_map: dict[tuple, banks_lib.Bank] = {}
        self.sites: dict[str, tuple[banks_lib.Bank, int]] = {}
        self._declare()
        rng = np.random.default_rng(seed)
        for bank in self.banks:
            init = bank.initial_value(rng)
            bank.variable = self.add_weight(
                name=bank.name, shape=init.shape,
                initializer=keras.initializers.Constant(init), trainable=True,
                autocast=False)  # float32 rows under mixed precision: `w` casts them.
            # An attribute of the model, so `tf.train.Checkpoint` saves it (Keras 3 does not
            # track variables held only in plain objects or dicts: they would be left out).
            setattr(self, f"bank_{bank.name}", bank.variable)

    # Declaration -----------------------------------------------------------------------------

    def site(self, name: str, kind: str, shape, **placement) -> None:
        """Declares a use of a kernel of `kind` and `shape` (see `Bank.add_site`)."""
        key = (kind, tuple(int(s) for s in shape))
        if key not in self.bank_map:
            dims = "x".join(str(s) for s in key[1])
            self.bank_map[key] = banks_lib.Bank(f"{kind}_{dims}", kind, key[1])
        if name in self.sites:
            raise ValueError(f"site {name} declared twice")
        bank = self.bank_map[key]
        self.sites[name] = (bank, bank.add_site(name, **placement))

    def _bn_sites(self, name: str, c: int, **placement) -> None:
        """Batch-norm scale and offset, only with `bn_affine`. Without them (DARTS' search
        setting, our default) every shared weight is a kernel, and DI protects all of them:
        scale and offset are not projected, and left trainable they carry the disturbance."""
        if self.bn_affine:
            self.site(f"{name}-gamma", banks_lib.VECTOR_ONES, (c,), **placement)
            self.site(f"{name}-beta", banks_lib.VECTOR_ZEROS, (c,), **placement)

    def _head_sites(self, channels: int) -> None:
        self.site("head-kernel", banks_lib.DENSE, (channels, self.num_classes))
        if self.bn_affine:
            self.site("head-bias", banks_lib.VECTOR_ZEROS, (self.num_classes,))

    @property
    def banks(self) -> list[banks_lib.Bank]:
        return list(self.bank_map.values())

    def _declare(self) -> None:
        raise NotImplementedError

    # Forward ---------------------------------------------------------------------------------

    def loose_flags(self, arch) -> tf.Tensor:
        """`[num_loose]` bool flags that sites may depend on (none by default)."""
        del arch
        return tf.zeros([0], tf.bool)

    @tf.autograph.experimental.do_not_convert  # Plain graph code; converting it triples tracing.
    def forward(self, images, arch, record_inputs: bool = False, sub_batches: int = 1,
                statistic: str = "mean"):
        """Logits and the `PathRecord` of `arch`; with `record_inputs`, the input statistics of
        its kernels too (`functional.InputRecorder`)."""
        arch = tf.convert_to_tensor(arch, tf.int32)
        record = banks_lib.gather_path(self.banks, arch, self.loose_flags(arch),
                                       self.space.length)
        inputs = InputRecorder(record_inputs, sub_batches, statistic)
        record.input_shape = inputs.shape
        # Under a mixed-precision policy the network computes in `compute_dtype` (the bank
        # rows are cast where they are read); the logits come back as float32.
        logits = self._forward(tf.cast(images, self.compute_dtype), arch, record, inputs)
        xla.stop_constant_propagation()
        return tf.cast(logits, tf.float32), record

    def call(self, images, arch, training=False):
        del training  # Batch statistics are used in both modes (see functional.batch_norm).
        return self.forward(images, arch)[0]

    def w(self, record: banks_lib.PathRecord, name: str) -> tf.Tensor:
        return tf.cast(record.row(*self.sites[name]), self.compute_dtype)

    def note_input(self, record, name: str, x_mean) -> None:
        if x_mean is not None:
            record.set_input(*self.sites[name], x_mean)

    def _forward(self, images, arch, record, inputs):
        raise NotImplementedError

    def _bn(self, rec, name, x):
        if not self.bn_affine:
            return F.batch_norm(x, None, None)
        return F.batch_norm(x, self.w(rec, f"{name}-gamma"), self.w(rec, f"{name}-beta"))

    def _conv(self, rec, inputs, name, x, kernel_size=1, strides=1):
        self.note_input(rec, f"{name}-kernel", inputs.conv(x, kernel_size, strides))
        return F.conv(x, self.w(rec, f"{name}-kernel"), strides)

    def _head(self, rec, inputs, h):
        """Logits from pooled features `h`, computed in float32 (as the child's head)."""
        self.note_input(rec, "head-kernel", inputs.dense(h))
        h = tf.cast(h, tf.float32)
        logits = tf.matmul(h, rec.row(*self.sites["head-kernel"]))
        return logits + rec.row(*self.sites["head-bias"]) if self.bn_affine else logits

    # Host-side views -------------------------------------------------------------------------

    def path_weights(self, arch: Architecture) -> dict[str, np.ndarray]:
        """The kernels `arch` uses, by site name (what `child.load_path_weights` copies)."""
        values = np.append(arch.to_array(), 0)
        loose = np.append(np.asarray(self.loose_flags(arch.to_tensor())), True)
        arrays = {bank.name: bank.variable.numpy() for bank in self.banks}
        out = {}
        for name, (bank, position) in self.sites.items():
            site = bank.sites[position]
            if site.op_pos >= 0 and values[site.op_pos] != site.op_value:
                continue
            if not loose[site.loose_pos]:
                continue
            row = site.base + (values[site.input_pos] if site.input_pos >= 0 else 0)
            out[name] = arrays[bank.name][row]
        return out

    def describe_banks(self) -> list[dict]:
        return [{"name": b.name, "kind": b.kind, "rows": b.rows, "sites": len(b.sites),
                 "d_in": b.d_in} for b in self.banks]
