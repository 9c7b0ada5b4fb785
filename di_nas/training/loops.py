"""The step machine: compiled train and eval loops for the shared weights and for a child.

Every job trains through these two machines: the search, final training, the studies and the
benchmark. Each separates the per-replica step (a `SharedWeightTrainer`'s `train_step`, or
`ChildLoop.step`) from the compiled loop (`run_steps`: several steps inside one `tf.function`,
metrics reduced over replicas and steps, as Orbit does), so one call runs a chunk of steps and
one trace serves every chunk length and every architecture (the architecture is an int32
tensor argument, or is sampled in-graph). Losses are `tf.nn.compute_average_loss` over the
global batch. Everything runs under the strategy given, else `tf.distribute.get_strategy()`;
the machines hold no module-level state: a job builds its machine once and keeps it.

This module must not read flags or files, name a search space, or know the controller: the
search passes its sampler in as a function.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import keras
import tensorflow as tf

from di_nas import distribute

MEAN, SUM = tf.distribute.ReduceOp.MEAN, tf.distribute.ReduceOp.SUM


def run_steps(strategy, step_fn, iterator, num_steps, *, args_fn=None,
              metrics=("loss", "accuracy"), reduce_op=MEAN, per_step=False):
    """Runs `num_steps` steps of `step_fn` on every replica; returns the reduced metrics.

    Call it inside one `tf.function` (see `compile_steps`), with `num_steps` a tensor, so one
    trace serves every call. Each step reads one distributed batch `(images, labels)` from
    `iterator`, calls `args_fn(step)` once in cross-replica context (the architecture: the same
    value reaches every replica) and runs `strategy.run(step_fn, (images, labels, *extra))`.

    Args:
      strategy: the strategy whose scope holds the variables.
      step_fn: per-replica step returning a dict with (at least) the keys of `metrics`, each a
        replica-local scalar (e.g. `SharedWeightTrainer.train_step`).
      iterator: an iterator over `distribute.distribute_dataset(strategy, ds)`.
      num_steps: number of steps (int or scalar int tensor, >= 1).
      args_fn: `step -> tensor or tuple` of extra per-step arguments, or None.
      metrics: the keys to reduce.
      reduce_op: MEAN (means over replicas and steps) or SUM (sums over both).
      per_step: return each step's value (float [num_steps]) instead of the total over steps.

    Returns:
      `{key: scalar}`, or `{key: [num_steps]}` with `per_step`.
    """
    num_steps = tf.convert_to_tensor(num_steps, tf.int32)
    arrays = {k: tf.TensorArray(tf.float32, size=num_steps) for k in metrics}
    for step in tf.range(num_steps):
        images, labels = next(iterator)
        extra = () if args_fn is None else args_fn(step)
        extra = tuple(extra) if isinstance(extra, (tuple, list)) else (extra,)
        out = strategy.run(step_fn, args=(images, labels, *extra))
        arrays = {k: arrays[k].write(step, tf.cast(strategy.reduce(reduce_op, out[k], axis=None),
                                                   tf.float32))
                  for k in metrics}
    values = {k: a.stack() for k, a in arrays.items()}
    if per_step:
        return values
    if reduce_op == MEAN:
        return {k: tf.reduce_mean(v) for k, v in values.items()}
    return {k: tf.reduce_sum(v) for k, v in values.items()}


def compile_steps(strategy, step_fn, **kwargs):
    """`tf.function((iterator, num_steps) -> metrics)` over `run_steps`; build it once.

    No `jit_compile` around the loop: `TPUStrategy` compiles the body of `strategy.run` itself,
    and the mirrored strategies' all-reduce and merge_call run outside XLA.
    """

    @tf.function
    def loop(iterator, num_steps):
        return run_steps(strategy, step_fn, iterator, num_steps, **kwargs)

    return loop


class SharedLoop:
    """A `SharedWeightTrainer`'s compiled train and eval loops under one strategy.

    `train` runs a chunk of steps per call (on a given architecture, or on one `sample` draws
    per step); `train_batch` one step on one batch (the benchmark); `eval_batch` the summed
    correct/loss/count of an architecture on one batch, `evaluate` over batches, `rewards`
    the accuracy of several architectures on one batch (the controller's rewards). Each is
    traced once for every architecture and chunk length.

    Args:
      trainer: the `SharedWeightTrainer` (its `train_step` and `eval_step` are per replica).
      sample: `() -> int32 [D]`, the architecture of a step drawn in-graph in cross-replica
        context (the search's controller); needed for `train(..., arch=None)` only.
      evaluator: another loop's `eval_batch` to reuse (trainers of one supernet evaluate alike:
        one trace instead of two).
      strategy: defaults to `tf.distribute.get_strategy()` at construction.
    """

    def __init__(self, trainer, sample: Callable[[], tf.Tensor] | None = None,
                 evaluator=None, strategy=None):
        self.trainer = trainer
        self.strategy = strategy = strategy or tf.distribute.get_strategy()
        self._sampled = None
        if sample is not None:
            self._sampled = compile_steps(strategy, trainer.train_step,
                                          args_fn=lambda _: sample(), per_step=True)

        @tf.function
        def train_fixed(iterator, num_steps, arch):
            return run_steps(strategy, trainer.train_step, iterator, num_steps,
                             args_fn=lambda _: arch, per_step=True)

        @tf.function(autograph=False)
        def train_batch(images, labels, arch):
            out = strategy.run(trainer.train_step, args=(images, labels, arch))
            return {k: strategy.reduce(MEAN, v, axis=None) for k, v in out.items()}

        @tf.function(autograph=False, reduce_retracing=True)
        def eval_batch(images, labels, arch):
            out = strategy.run(trainer.eval_step, args=(images, labels, arch))
            return {k: strategy.reduce(SUM, v, axis=None) for k, v in out.items()}

        self._fixed = train_fixed
        self.train_batch = train_batch
        self.eval_batch = evaluator or eval_batch
        self.rewards = tf.function(self._rewards)

    def train(self, iterator, num_steps: int, arch=None) -> dict[str, tf.Tensor]:
        """`num_steps` steps from a distributed iterator in one call; returns each step's
        `loss` and `accuracy` (float [num_steps], means over the replicas).

        With `arch` (an int32 [D] tensor) every step trains it; without, each step trains the
        architecture `sample()` draws.
        """
        steps = tf.constant(num_steps, tf.int32)
        if arch is None:
            return self._sampled(iterator, steps)
        return self._fixed(iterator, steps, tf.convert_to_tensor(arch, tf.int32))

    def tracing_counts(self) -> dict[str, int]:
        """How often each compiled function was traced (tests assert one trace)."""
        fns = {"train": self._fixed, "train_sampled": self._sampled,
               "train_batch": self.train_batch, "eval_batch": self.eval_batch,
               "rewards": self.rewards}
        return {k: int(f.experimental_get_tracing_count()) for k, f in fns.items()
                if f is not None}

    def evaluate(self, batches: Iterable, arch) -> dict[str, float]:
        """Accuracy and mean loss of `arch` over distributed batches `(images, labels)`."""
        arch = tf.convert_to_tensor(arch, tf.int32)
        correct = loss = n = 0.0
        for images, labels in batches:
            out = self.eval_batch(images, labels, arch)
            correct += float(out["correct"])
            loss += float(out["loss"])
            n += float(out["n"])
        return {"accuracy": correct / max(n, 1.0), "loss": loss / max(n, 1.0)}

    def _rewards(self, images, labels, archs) -> tf.Tensor:
        """`rewards`: the accuracy of each of `archs` (int32 [N, D]) on one distributed batch,
        compiled (one trace per N)."""
        def one(arch):
            sums = self.eval_batch(images, labels, arch)
            return sums["correct"] / sums["n"]

        return tf.map_fn(one, archs, fn_output_signature=tf.float32)


def main_logits(outputs):
    """The main head's logits of a child's output (drops the auxiliary logits)."""
    return outputs[0] if isinstance(outputs, (list, tuple)) else outputs


class ChildLoop:
    """A standalone child's compiled train and eval loops under one strategy.

    SGD with the optimizer given (its schedule sets the rate, so nothing retraces), label
    smoothing, an optional auxiliary head, clipping of the global gradient norm, then coupled
    L2 decay after clipping (PyTorch SGD, as DARTS/ENAS). Build it inside the strategy's scope.

    Args:
      model: the child (`keras.Model`; returns `[logits, aux_logits]` with an auxiliary head).
      optimizer: a built Keras optimizer of `model.trainable_variables`.
      num_classes: classes of the labels.
      global_batch: examples per step over all replicas (the loss is averaged over it); None
        takes each replica's batch size times the replicas.
      label_smoothing, auxiliary_weight, grad_clip_norm, weight_decay: as in `FinalConfig`
        (0 turns each off).
      jit_compile: XLA-compile the forward and backward pass.
    """

    def __init__(self, model, optimizer, num_classes: int, global_batch: int | None = None, *,
                 label_smoothing: float = 0.0, auxiliary_weight: float = 0.0,
                 grad_clip_norm: float = 0.0, weight_decay: float = 0.0,
                 jit_compile: bool = False, strategy=None):
        self.model, self.optimizer = model, optimizer
        self.num_classes, self.global_batch = num_classes, global_batch
        self.auxiliary_weight, self.grad_clip_norm = auxiliary_weight, grad_clip_norm
        self.weight_decay = weight_decay
        self.strategy = strategy = strategy or tf.distribute.get_strategy()
        self._smoothed = keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=label_smoothing, reduction=None)
        self._gradients = (tf.function(self._gradients_eager, jit_compile=True) if jit_compile
                           else self._gradients_eager)
        self.train = compile_steps(strategy, self.step, metrics=("loss", "correct", "count"),
                                   reduce_op=SUM)
        self.train_batch = tf.function(
            lambda images, labels: strategy.run(self.step, args=(images, labels)))

    def _gradients_eager(self, images, labels):
        variables = self.model.trainable_variables
        onehot = tf.one_hot(labels, self.num_classes)
        with tf.GradientTape() as tape:
            outputs = self.model(images, training=True)
            logits = main_logits(outputs)
            per_example = self._smoothed(onehot, logits)
            total = per_example
            if isinstance(outputs, (list, tuple)):
                total = per_example + self.auxiliary_weight * self._smoothed(onehot, outputs[1])
            loss = tf.nn.compute_average_loss(total, global_batch_size=self.global_batch)
            loss = self.optimizer.scale_loss(loss)  # A `LossScaleOptimizer`'s scale, or 1.
        predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)
        correct = tf.reduce_sum(tf.cast(tf.equal(predictions, labels), tf.float32))
        return tape.gradient(loss, variables), tf.reduce_sum(per_example), correct

    def step(self, images, labels):
        """One per-replica SGD step: `{'loss' (sum over examples), 'correct', 'count'}`."""
        variables = self.model.trainable_variables
        replicas = self.strategy.num_replicas_in_sync
        grads, loss_sum, correct = self._gradients(images, labels)
        # With float16 loss scaling the gradients are still scaled up here (the optimizer
        # divides them and skips steps that overflowed): clip and decay at the same scale.
        loss_scale = 1.0
        if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
            loss_scale = tf.cast(self.optimizer.dynamic_scale, tf.float32)
        if self.grad_clip_norm:
            # Clip the norm of the global gradient (the sum over replicas), not per replica;
            # the optimizer then sums the scaled per-replica gradients itself.
            summed = grads
            if replicas > 1:
                summed = tf.distribute.get_replica_context().all_reduce("sum", grads)
            norm = tf.linalg.global_norm(summed)
            scale = tf.minimum(1.0, self.grad_clip_norm * loss_scale / tf.maximum(norm, 1e-12))
            grads = [g * scale for g in grads]
        if self.weight_decay:
            # The optimizer sums the replicas' gradients.
            decay = self.weight_decay * loss_scale / replicas
            grads = [g + decay * v for g, v in zip(grads, variables, strict=True)]
        self.optimizer.apply(grads, variables)
        return {"loss": loss_sum, "correct": correct,
                "count": tf.cast(tf.shape(labels)[0], tf.float32)}

    def evaluate(self, dataset: tf.data.Dataset) -> dict[str, float]:
        """`{"loss", "accuracy"}` of the model over a batched dataset, in one compiled pass."""
        model, strategy = self.model, self.strategy
        distributed = distribute.distribute_dataset(strategy, dataset)
        plain = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)

        def replica_step(images, labels):
            logits = main_logits(model(images, training=False))
            predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)
            return (tf.reduce_sum(plain(labels, logits)),
                    tf.reduce_sum(tf.cast(tf.equal(predictions, labels), tf.float32)),
                    tf.cast(tf.shape(labels)[0], tf.float32))

        @tf.function
        def eval_loop():
            loss_sum, correct, count = tf.constant(0.0), tf.constant(0.0), tf.constant(0.0)
            for images, labels in distributed:  # (AutoGraph: no comprehension over `out`.)
                out = strategy.run(replica_step, args=(images, labels))
                loss_sum += strategy.reduce(SUM, out[0], axis=None)
                correct += strategy.reduce(SUM, out[1], axis=None)
                count += strategy.reduce(SUM, out[2], axis=None)
            return loss_sum, correct, count

        loss_sum, correct, count = (float(t) for t in eval_loop())
        return {"loss": loss_sum / max(count, 1.0), "accuracy": correct / max(count, 1.0)}
