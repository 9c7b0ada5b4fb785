"""The projector unit: the DI state of a set of protected kernels and what may be done with it.

A `Projector` owns, per protected kernel *entry*, the projector variable `P`
(`[rows, *projector_shape]`, identity at start), that entry's beta, and two switches the
PD study sets (`projecting`, `recording`). An entry is either a supernet bank (one row per
shared kernel it stacks) or an ordinary layer's kernel (one row). The pure math is
`di_nas.di.math`; this module only holds state and applies that math to rows of it.

Public API (all methods are graph-safe; call them inside a `tf.function` or eagerly):

    unit = Projector({"conv": Kernel("conv", (3, 3, 16, 32), rows=1)}, beta=1e-3,
                     statistic="mean")
    unit.protects("conv")                  # -> bool
    g = unit.project("conv", grad)         # P @ G; grad `[*kernel]` (rows=None) or
    g = unit.project("conv", grad, rows=idx)   # `[n, *kernel]` for rows `idx` `[n]`
    unit.update("conv", stat)              # fold a statistic into P (see `update`)
    unit.update("conv", stat, rows=idx, active=mask)
    unit.reset()                           # every P to the identity
    unit.decay_all(rate)                   # every P towards the identity
    unit.trace_stats()                     # {entry: mean trace(P) / d}; 1 plastic, 0 frozen
    unit.nbytes()                          # projector memory
    unit.projecting / unit.recording       # tf.Variable(bool) switches, both True by default

Statistics (`statistic=`): ``mean`` (the paper's: each kernel's mean input `x`, folded by
recursive least squares) and ``covariance`` (the inputs' second moment `M`, folded by
`P <- (P^-1 + M / beta)^-1`). `di_nas.di.math` documents the shapes they take.

Imports TensorFlow, NumPy and `di_nas.di.math` only: no model, no loop, no flags.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import tensorflow as tf

from di_nas.di import math as proj

log = logging.getLogger(__name__)

STATISTICS = ("mean", "covariance")


@dataclasses.dataclass(frozen=True)
class Kernel:
    """A protected kernel entry: `kind` (`conv`, `depthwise`, `dense`), the shape of one
    kernel (e.g. `[k, k, c_in, c_out]`) and how many such kernels (`rows`) it stacks."""

    kind: str
    shape: tuple
    rows: int = 1

    @property
    def d_in(self) -> int:
        return int(proj.projector_shape(self.kind, self.shape)[-1])


def _select_rows(keep, new, old):
    """`new` where `keep` (`[n]` bool) else `old`, row-wise."""
    return tf.where(tf.reshape(keep, [-1] + [1] * (len(old.shape) - 1)), new, old)


class Projector(tf.Module):
    """DI projectors of several kernel entries (see the module docstring).

    Args:
      kernels: `{name: Kernel}`; entries whose kind has no projector, or whose input
        dimension exceeds `max_dim`, are left unprotected (with a warning for the latter).
      beta: the regulariser of the update, on the scale of the statistic.
      statistic: ``mean`` or ``covariance``.
      scale_beta: multiply beta by each entry's input dimension.
      decay: per-update decay of `P` towards the identity (0 = none).
      max_dim: the largest input dimension protected.
      static_shapes: solve covariance updates for every row given, active or not (XLA needs
        static shapes); otherwise only the active rows are solved.
    """

    def __init__(self, kernels: dict, beta: float, statistic: str = "mean", *,
                 scale_beta: bool = False, decay: float = 0.0, max_dim: int = 4096,
                 static_shapes: bool = False, name: str = "projector"):
        super().__init__(name=name)
        if statistic not in STATISTICS:
            raise ValueError(f"statistic {statistic!r} is not one of {STATISTICS}")
        self.statistic = statistic
        self.decay = float(decay)
        self.static_shapes = bool(static_shapes)
        self.kernels, self.p, self.betas = {}, {}, {}
        self.projecting = tf.Variable(True, trainable=False, name="projecting")
        self.recording = tf.Variable(True, trainable=False, name="recording")
        for key, kernel in kernels.items():
            shape = proj.projector_shape(kernel.kind, kernel.shape)
            if shape is None:
                continue
            if shape[-1] > max_dim:
                log.warning("DI: %s has d_in=%d > max_dim=%d; left unprotected", key,
                            shape[-1], max_dim)
                continue
            eye = np.broadcast_to(np.eye(shape[-1], dtype=np.float32), (kernel.rows, *shape))
            self.kernels[key] = kernel
            self.p[key] = tf.Variable(eye, trainable=False, name=f"projector_{key}")
            self.betas[key] = proj.effective_beta(beta, shape[-1], scale_beta)

    def protects(self, key: str) -> bool:
        return key in self.p

    def _rows(self, key, rows):
        var = self.p[key]
        return tf.convert_to_tensor(var) if rows is None else tf.gather(var, rows)

    def project(self, key: str, grad, rows=None, p=None):
        """`P @ G` for the kernel gradients `grad` (unchanged while `projecting` is off).

        Args:
          key: the entry.
          grad: `[n, *kernel]` for the entry's rows `rows` (`[n]` int), or one kernel
            `[*kernel]` of a single-row entry when `rows` is None.
          p: the gathered `P` rows, when the caller already holds them.
        """
        kernel = self.kernels[key]
        single = rows is None and len(grad.shape) == len(kernel.shape)
        g = grad[None] if single else grad
        p = self._rows(key, rows) if p is None else p
        out = proj.from_matrix(kernel.kind, proj.project(p, proj.as_matrix(kernel.kind, g)),
                               g.shape)
        out = tf.where(self.projecting, out, g)
        return out[0] if single else out

    def updated(self, key: str, stat, p, active=None):
        """The new `P` rows from rows `p` and a statistic (see `update`); writes nothing."""
        beta = self.betas[key]
        if self.statistic == "covariance":
            m = stat[0]
            if active is None or self.static_shapes:
                p_new = proj.moment_update(p, m, beta)
            else:
                p_new = proj.moment_update_where(p, m, beta, active)
        else:
            p_new = proj.rls_update_block(p, stat, beta)
        if self.decay:
            p_new = proj.decay_towards_identity(p_new, self.decay)
        return p_new

    def update(self, key: str, stat, rows=None, active=None, p=None):
        """Folds a statistic into `P` (nothing changes while `recording` is off).

        Args:
          key: the entry.
          stat: `[groups, n, *s]`, `s` being one row's statistic (`mean`: `[d]`, depthwise
            `[C, k*k]`; `covariance`: that shape plus `d` again, with `groups == 1`); without
            `rows`, `[groups, *s]` for a single-row entry.
          rows: `[n]` int rows of the entry, or None for all of a single-row entry.
          active: `[n]` bool, rows that take the update (default all).
          p: the rows of `P` as gathered before (saves a gather).
        """
        single = rows is None
        if single:
            stat = stat[:, None]
            rows = tf.zeros([1], tf.int32)
        p = self._rows(key, rows) if p is None else p
        p_new = self.updated(key, stat, p, active)
        keep = self.recording if active is None else tf.logical_and(active, self.recording)
        keep = tf.broadcast_to(keep, tf.shape(rows))
        # `scatter_update` (not `_nd_`): mirrored variables under a strategy lack the latter.
        self.p[key].scatter_update(tf.IndexedSlices(_select_rows(keep, p_new, p), rows))

    def reset(self) -> None:
        """Sets every `P` to the identity."""
        for var in self.p.values():
            var.assign(proj.identity_like(tf.convert_to_tensor(var)))

    def decay_all(self, rate: float) -> None:
        """Moves every `P` a fraction `rate` towards the identity."""
        for var in self.p.values():
            var.assign(proj.decay_towards_identity(tf.convert_to_tensor(var), rate))

    def trace_stats(self) -> dict:
        """Mean trace(P)/d per entry: 1 is fully plastic, 0 fully frozen."""
        return {key: tf.reduce_mean(tf.linalg.trace(tf.convert_to_tensor(var))) / var.shape[-1]
                for key, var in self.p.items()}

    def nbytes(self) -> int:
        return int(sum(np.prod(var.shape) * 4 for var in self.p.values()))
