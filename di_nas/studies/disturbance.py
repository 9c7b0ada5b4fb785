"""Measuring performance disturbance (PD): how much training B moves A's accuracy.

    PD(A | B) = Acc_val(A; w before training B) - Acc_val(A; w after training B)

`measure_disturbance` runs one (A, B) pair from a trainer's current weights; `snapshot` and
`restore` put a supernet, its momentum, projectors and step back to an identical start, so
plain and disturbance-immune weight sharing can be compared from the same weights (two
trainers may share one supernet: a snapshot of one restores into the other).

Training and evaluation run through the trainer's `training.loops.SharedLoop` (built once
by the caller, under its strategy): `train_arch` runs its steps in one compiled call, and one
trace serves every architecture (the arch is an int32 tensor argument). Batches may be numpy
arrays or tensors (e.g. from a `tf.data` iterator). This module holds no study logic (see
`di_nas.studies.pd`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np
import tensorflow as tf

from di_nas import distribute
from di_nas.di import math as proj


def _arch_tensor(arch) -> tf.Tensor:
    values = arch.values if hasattr(arch, "values") else arch
    return tf.constant(np.asarray(values, np.int32))


def train_arch(loop, arch, batches: Iterator, steps: int) -> list[float]:
    """`steps` shared-weight steps on `arch` in one compiled call; returns each step's loss.

    Args:
      loop: the trainer's `training.loops.SharedLoop`.
      arch: an `Architecture` or int sequence.
      batches: an iterator of host batches `(images, labels)`; `steps` of them are used.
      steps: number of steps.
    """
    iterator = distribute.host_batches(loop.strategy, [next(batches) for _ in range(steps)])
    return [float(v) for v in loop.train(iterator, steps, _arch_tensor(arch))["loss"].numpy()]


def evaluate_arch(loop, arch, eval_batches: Iterable) -> dict[str, float]:
    """`{'accuracy', 'loss'}` of `arch` with the shared weights over host `eval_batches`."""
    split = (distribute.split_batch(loop.strategy, *batch) for batch in eval_batches)
    return loop.evaluate(split, _arch_tensor(arch))


# Identical starting points ---------------------------------------------------------------------

def snapshot(trainer) -> dict:
    """Host copies of the supernet weights, momentum, projectors and step."""
    return {
        "weights": [v.numpy() for v in trainer.supernet.weights],
        "momentum": {k: v.numpy() for k, v in trainer.momentum.items()},
        "projectors": {k: v.numpy() for k, v in trainer.projectors.items()},
        "step": int(trainer.step.numpy()),
    }


def restore(trainer, snap: dict) -> None:
    """Puts `snap` back into `trainer` (which may be another trainer of the same supernet).

    Projectors the snapshot lacks (it came from a plain trainer) are reset to the identity.
    """
    weights = trainer.supernet.weights
    if len(weights) != len(snap["weights"]):
        raise ValueError("snapshot is from a different supernet")
    for var, value in zip(weights, snap["weights"], strict=True):
        var.assign(value)
    for name, var in trainer.momentum.items():
        var.assign(snap["momentum"][name])
    for name, var in trainer.projectors.items():
        if name in snap["projectors"]:
            var.assign(snap["projectors"][name])
        else:
            var.assign(proj.identity_like(tf.convert_to_tensor(var)))
    trainer.step.assign(snap["step"])


def pd_phase(trainer, phase: str) -> None:
    """The PD study's DI switches: in phase "a" steps are unprojected and recorded (A trains
    as plain weight sharing does while `P` holds its inputs), in "b" projected and not
    recorded (B trains against A's inputs only); any other phase, both on (a search)."""
    trainer.projecting.assign(phase != "a")
    trainer.recording.assign(phase != "b")


def clear_momentum(trainer) -> None:
    """Zeros every momentum buffer."""
    for var in trainer.momentum.values():
        var.assign(tf.zeros_like(var))


# The measurement -------------------------------------------------------------------------------

def measure_disturbance(loop, arch_a, arch_b, train_batches: Iterator, eval_batches,
                        steps: int, reset_projectors: bool = True,
                        clear_momentum_between: bool = True,
                        phase: Callable[[str], None] | None = None) -> dict[str, float]:
    """PD of `arch_a` caused by training `arch_b`, from the loop's trainer's current weights.

    Trains A for `steps` steps, evaluates A (and B), trains B for `steps` steps, evaluates A
    and B again. With DI and `reset_projectors`, `P` is reset to the identity first, so it
    protects A's inputs (and then B's own) while B trains.

    Args:
      loop: the `training.loops.SharedLoop` of a `SharedWeightTrainer`.
      arch_a, arch_b: `Architecture`s or int sequences.
      train_batches: an iterator of `(images, labels)` training batches (numpy or tensors).
      eval_batches: a re-iterable collection of `(images, labels)` batches (a list or a
        finite `tf.data.Dataset`), e.g. the search-valid split.
      steps: training steps of A, and then of B.
      reset_projectors: reset `P` to the identity before training A.
      clear_momentum_between: zero the momentum before B's steps, so that A's pending
        momentum (not projected, the same for every method) is not counted as B's
        disturbance: the measurement isolates what B's own gradients do to A.
      phase: called with "a" before A's steps and "b" before B's (e.g. to train A the same
        way for every method and B with the method under test).

    Returns:
      `{'a_acc_before', 'a_acc_after', 'pd_acc', 'a_loss_before', 'a_loss_after', 'pd_loss',
      'b_acc_before', 'b_acc_after', 'b_gain', 'a_train_loss', 'b_train_loss_first',
      'b_train_loss_last'}` as floats.
    """
    trainer = loop.trainer
    if reset_projectors:
        trainer.reset_projectors()
    if phase is not None:
        phase("a")
    a_losses = train_arch(loop, arch_a, train_batches, steps)
    a_before = evaluate_arch(loop, arch_a, eval_batches)
    b_before = evaluate_arch(loop, arch_b, eval_batches)
    if clear_momentum_between:
        clear_momentum(trainer)
    if phase is not None:
        phase("b")
    b_losses = train_arch(loop, arch_b, train_batches, steps)
    a_after = evaluate_arch(loop, arch_a, eval_batches)
    b_after = evaluate_arch(loop, arch_b, eval_batches)
    return {
        "a_acc_before": a_before["accuracy"], "a_acc_after": a_after["accuracy"],
        "pd_acc": a_before["accuracy"] - a_after["accuracy"],
        "a_loss_before": a_before["loss"], "a_loss_after": a_after["loss"],
        "pd_loss": a_after["loss"] - a_before["loss"],
        "b_acc_before": b_before["accuracy"], "b_acc_after": b_after["accuracy"],
        "b_gain": b_after["accuracy"] - b_before["accuracy"],
        "a_train_loss": float(np.mean(a_losses[-max(1, steps // 5):])),
        "b_train_loss_first": float(np.mean(b_losses[:max(1, steps // 5)])),
        "b_train_loss_last": float(np.mean(b_losses[-max(1, steps // 5):])),
    }


def shares_ops(arch_a, arch_b) -> bool:
    """Whether two architectures of a space train at least one common searched weight.

    Every architecture shares the stem, cell combiners and head; this asks for more: a
    decision slot where both take the same op with weights (`Op.has_weights`) on the same
    input (ENAS keeps an op's weights per chosen input, so the input must match too).
    """
    a, b = arch_a.values, arch_b.values
    decisions = arch_a.space.decisions
    ops = arch_a.space.op_table
    for i, decision in enumerate(decisions):
        if decision.kind != "op" or a[i] != b[i] or not ops[a[i]].has_weights:
            continue
        has_input = i > 0 and decisions[i - 1].kind == "input"
        if not has_input or a[i - 1] == b[i - 1]:
            return True
    return False
