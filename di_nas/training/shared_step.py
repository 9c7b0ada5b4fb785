"""The shared-weight train step (plain or disturbance-immune) and the evaluation step.

Per replica: forward the sampled path, loss by `tf.nn.compute_average_loss`, gradients with
respect to the gathered bank rows, all-reduce of gradients and of the DI input statistics, then
one merged update per bank: clip, project (`P @ G`), masked SGD with momentum, and the
projector update: `P <- P - (Px)(Px)^T / (beta + x^T P x)` for mean inputs `x`, or
`P <- (P^-1 + M / beta)^-1` for input second moments `M`, both held and applied by the
projector unit (`di_nas.di.projector`). Only rows
the path used change; weights off the path and their momentum stay bitwise equal. Usable
under any `tf.distribute` strategy.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from di_nas.di.projector import Kernel, Projector
from di_nas.supernet import xla
from di_nas.training import masked_sgd as optim
from di_nas.training import precision


def _scoped_rows(bank, scope: str) -> np.ndarray:
    """`[rows]` bool: the rows of `bank` that DI's `scope` protects."""
    searched = bank.searched_rows()
    return {"all": np.ones_like(searched), "ops": searched, "fixed": ~searched}[scope]


class SharedWeightTrainer(tf.Module):
    """Momentum and projector state for a supernet's banks, and its step functions.

    Args:
      supernet: a `Supernet`.
      optim_cfg: `OptimConfig` (learning_rate, learning_rate_min, momentum, nesterov,
        weight_decay, grad_clip_norm).
      di_cfg: `DIConfig` (enabled, beta, scale_beta, decay, max_dim, sub_batches, inputs), or
        None.
      total_steps: length of the cosine schedule.
      static_shapes: keep every tensor's shape static, as XLA needs (the covariance update
        then solves for every site of a bank, not only the active ones). Default: whether the
        trainer is built under a `TPUStrategy`, or `jit_compile`.
      jit_compile: XLA-compile each replica's forward and backward pass (with the DI input
        statistics) in `train_step`; the all-reduce and the merged update stay outside, as
        the mirrored strategies need. A `TPUStrategy` compiles the whole step itself.
    """

    def __init__(self, supernet, optim_cfg, di_cfg=None, total_steps: int = 1000,
                 static_shapes: bool | None = None, jit_compile: bool = False):
        super().__init__(name="shared_weight_trainer")
        self.supernet = supernet
        self.optim_cfg = optim_cfg
        self.di_cfg = di_cfg
        self.di = bool(di_cfg is not None and di_cfg.enabled)
        self.total_steps = int(total_steps)
        if static_shapes is None:
            static_shapes = jit_compile or isinstance(tf.distribute.get_strategy(),
                                                      tf.distribute.TPUStrategy)
        self.static_shapes = bool(static_shapes)
        self._forward_backward = (tf.function(self._forward_backward_eager, jit_compile=True)
                                  if jit_compile else self._forward_backward_eager)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        # float16 compute (`--precision=mixed_float16`): dynamic loss scaling. A step whose
        # gradients overflow changes no weight, momentum or projector and halves the scale.
        self.loss_scale = (precision.DynamicLossScale()
                           if supernet.compute_dtype == "float16" else None)
        self.momentum = {b.name: tf.Variable(tf.zeros([b.rows, *b.shape]), trainable=False,
                                             name=f"momentum_{b.name}")
                         for b in supernet.banks}
        # What DI projects (`masked_sgd.PROJECT_MODES`) and what a row's momentum does while
        # the row is off the path: `lazy` (kept as it was) or `decay` (by momentum per step).
        self.project_mode = getattr(di_cfg, "project", "gradient")
        self.max_gain = getattr(di_cfg, "rescale", 1.0)
        self.offpath = getattr(optim_cfg, "offpath_momentum", "lazy")
        self.last_step = {b.name: tf.Variable(tf.zeros([b.rows], tf.int64), trainable=False,
                                              name=f"last_step_{b.name}")
                          for b in supernet.banks} if self.offpath == "decay" else {}
        kernels, self.scoped_rows = {}, {}
        if self.di:
            # Rows out of `scope` record nothing, so their P stays the identity. Only banks
            # `scope` protects in part keep a mask; the step adds no op for the others.
            masks = {b.name: _scoped_rows(b, di_cfg.scope) for b in supernet.banks
                     if b.projected}
            self.scoped_rows = {n: m for n, m in masks.items() if m.any() and not m.all()}
            kernels = {b.name: Kernel(b.kind, b.shape, b.rows) for b in supernet.banks
                       if b.name in masks and masks[b.name].any()}
        self.projector = Projector(
            kernels, di_cfg.beta if self.di else 1.0, di_cfg.inputs if self.di else "mean",
            scale_beta=self.di and di_cfg.scale_beta, decay=di_cfg.decay if self.di else 0.0,
            max_dim=di_cfg.max_dim if self.di else 0, static_shapes=self.static_shapes)

    # Bookkeeping -----------------------------------------------------------------------------

    @property
    def projectors(self) -> dict:
        """`{bank: P}` variables of the protected banks (empty for plain weight sharing)."""
        return self.projector.p

    @property
    def betas(self) -> dict:
        return self.projector.betas

    @property
    def projecting(self) -> tf.Variable:
        return self.projector.projecting

    @property
    def recording(self) -> tf.Variable:
        return self.projector.recording

    def projector_bytes(self) -> int:
        return self.projector.nbytes()

    def reset_projectors(self) -> None:
        """Sets every `P` to the identity (call between compiled steps)."""
        self.projector.reset()

    def projector_stats(self) -> dict[str, tf.Tensor]:
        """Mean trace(P)/d per bank: 1 is fully plastic, 0 fully frozen."""
        return self.projector.trace_stats()

    def learning_rate(self):
        c = self.optim_cfg
        return optim.cosine_lr(self.step, self.total_steps, c.learning_rate,
                               c.learning_rate_min)

    # Steps -----------------------------------------------------------------------------------

    def _forward_backward_eager(self, images, labels, arch):
        """Loss, gradients w.r.t. the path's bank rows, and the DI input statistics."""
        net = self.supernet
        groups = self.di_cfg.sub_batches if self.di else 1
        statistic = self.di_cfg.inputs if self.di else "mean"
        with tf.GradientTape() as tape:
            logits, record = net.forward(images, arch, record_inputs=self.di,
                                         sub_batches=groups, statistic=statistic)
            per_example = tf.keras.losses.sparse_categorical_crossentropy(
                labels, logits, from_logits=True)
            loss = tf.nn.compute_average_loss(per_example)
            if self.loss_scale is not None:
                loss = self.loss_scale.scale(loss)
        banks = net.banks
        grads = tape.gradient(loss, [record.rows[b.name] for b in banks])
        xla.stop_constant_propagation()  # The gradient's own switch/cond ops.
        grads = [tf.zeros_like(record.rows[b.name]) if g is None else g
                 for g, b in zip(grads, banks, strict=True)]
        if self.loss_scale is not None:
            grads = self.loss_scale.unscale(grads)
        inputs = {b.name: record.stacked_inputs(b) for b in banks if b.name in self.projectors}
        correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32),
                                   tf.cast(labels, tf.int32)), tf.float32)
        return {"grads": grads, "inputs": inputs,
                "indices": [record.indices[b.name] for b in banks],
                "actives": [record.active[b.name] for b in banks],
                "loss": tf.reduce_mean(per_example), "accuracy": tf.reduce_mean(correct)}

    @tf.autograph.experimental.do_not_convert  # No data-dependent Python control flow here.
    def train_step(self, images, labels, arch):
        """One per-replica step on `arch`; returns `{'loss', 'accuracy'}` (replica-local)."""
        out = self._forward_backward(images, labels, arch)
        grads, inputs, actives = out["grads"], out["inputs"], out["actives"]
        ctx = tf.distribute.get_replica_context()
        if ctx is not None and ctx.num_replicas_in_sync > 1:
            grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
            inputs = ctx.all_reduce(tf.distribute.ReduceOp.MEAN, inputs)
        finite = tf.constant(True)
        if self.loss_scale is not None:  # After the all-reduce: every replica agrees.
            finite = precision.all_finite(grads)
            actives = [tf.logical_and(a, finite) for a in actives]
        scale = optim.global_norm_scale(grads, actives, self.optim_cfg.grad_clip_norm)
        args = (out["indices"], actives, grads, inputs, scale, self.learning_rate(), finite)
        if ctx is None:
            self._apply(tf.distribute.get_strategy(), *args)
        else:
            ctx.merge_call(self._apply, args=args)
        return {"loss": out["loss"], "accuracy": out["accuracy"]}

    def _apply(self, strategy, indices, actives, grads, inputs, scale, lr, finite):
        banks = self.supernet.banks
        for bank, idx, active, grad in zip(banks, indices, actives, grads, strict=True):
            x = inputs.get(bank.name)
            strategy.extended.update(
                bank.variable.value, self._bank_update(bank, self.projector.protects(bank.name)),
                args=(idx, active, grad, x, scale, lr), group=False)
        strategy.extended.update(self.step, lambda v: v.assign_add(1), group=False)
        if self.loss_scale is not None:
            self.loss_scale.update(strategy, finite)

    def _bank_update(self, bank, protected):
        cfg = self.optim_cfg
        mom_var = self.momentum[bank.name]
        unit = self.projector

        def update(var, idx, active, grad, x, scale, lr):
            w = tf.gather(var, idx)
            g = grad * scale
            p = tf.gather(unit.p[bank.name], idx) if protected else None
            m = tf.gather(mom_var, idx)
            if self.offpath == "decay":
                m = optim.decay_momentum(m, tf.gather(self.last_step[bank.name], idx),
                                         self.step, cfg.momentum)
            w_new, m_new = optim.momentum_update(
                w, g, m, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                weight_decay=cfg.weight_decay, mode=self.project_mode, max_gain=self.max_gain,
                project=(lambda t: unit.project(bank.name, t, rows=idx, p=p)) if protected
                else None)
            var.scatter_nd_update(idx[:, None], optim.select_rows(active, w_new, w))
            # Under a strategy, `mom_var` and P are mirrored: `scatter_update` writes the copy
            # of the device being updated (mirrored variables lack `scatter_nd_update`).
            mom_var.scatter_update(tf.IndexedSlices(optim.select_rows(active, m_new, m), idx))
            if self.offpath == "decay":
                last = self.last_step[bank.name]
                last.scatter_update(tf.IndexedSlices(tf.where(
                    active, self.step, tf.gather(last, idx)), idx))
            if protected:
                scoped = self.scoped_rows.get(bank.name)
                if scoped is not None:
                    active = tf.logical_and(active, tf.gather(scoped, idx))
                unit.update(bank.name, x, rows=idx, active=active, p=p)
            return var

        return update

    @tf.autograph.experimental.do_not_convert
    def eval_step(self, images, labels, arch):
        """Per-replica accuracy and loss sums of `arch` on a batch: `{'correct', 'loss', 'n'}`."""
        logits = self.supernet(images, arch)
        per_example = tf.keras.losses.sparse_categorical_crossentropy(
            labels, logits, from_logits=True)
        correct = tf.equal(tf.argmax(logits, -1, output_type=tf.int32), tf.cast(labels, tf.int32))
        return {"correct": tf.reduce_sum(tf.cast(correct, tf.float32)),
                "loss": tf.reduce_sum(per_example),
                "n": tf.cast(tf.shape(labels)[0], tf.float32)}
