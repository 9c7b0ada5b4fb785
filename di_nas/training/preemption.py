"""How a search stops when told to (SIGTERM or SIGINT), per strategy.

`stopper(strategy, manager, output_dir)` yields the object the search polls between chunks of
steps: `raised` (stop after this chunk: checkpoint and end) and `safe_point(where)` (called
at the same points on every worker).

- **One process** (`default`, `mirrored`, and `tpu`: TPUStrategy is single-client, one
  Python process drives every TPU host): `signals.StopFlag`, as for every other job. The
  search checkpoints where it stands and ends with `KeyboardInterrupt` (status 130, one line);
  `safe_point` does nothing.
- **MultiWorkerMirroredStrategy**: a signal reaches one worker, but saving is collective, so
  a worker must not stop alone. TensorFlow's `PreemptionCheckpointHandler` makes the workers
  agree: a worker that is told to stop publishes, through the cluster's coordination service,
  the safe point after its next one; every worker saves the search's checkpoint there (through
  the search's own `CheckpointManager`) and ends with `KeyboardInterrupt` (status 130). The
  same command, started again on every worker, resumes from that checkpoint at its step in the
  epoch. `StopFlag` still catches SIGTERM and SIGINT (the handler polls its flag once a second
  instead of installing its own SIGTERM handler), so Ctrl-C on any worker stops the job too.
  `raised` stays False: the handler alone stops a multi-worker job. Safe points are the ends
  of chunks of `--log_every` steps and of epochs, so a stop takes up to a second plus two
  chunks (or a controller phase); one that comes after the last safe point lets the job
  finish.

Why not the handler for TPUStrategy: in TensorFlow 2.21 it acts on TPUs only inside Google
(`INTERNAL_TPU`, through a preemption op); on a Cloud TPU VM (`GCE_TPU`) and on a GCP CPU VM
(`GCE_CPU`) it logs "does not support usage with TPU or CPU device on GCP", installs nothing
and `save_checkpoint_if_preempted` returns at once. A multi-worker job on a GCP CPU VM
therefore keeps the default signal handlers (a warning says so): SIGTERM ends it, and it
resumes from its last epoch checkpoint.

Imports nothing of di_nas but `training.signals` and `training.progress`.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile

import tensorflow as tf

from di_nas.training import progress, signals

# TF 2.21's PreemptionCheckpointHandler does nothing on these platforms (see above).
_INERT_PLATFORMS = ("GCE_CPU", "GCE_TPU")


class _QuietDeprecation(logging.Filter):
    """Drops the warning the handler's own save logs about its deprecated `total_run_calls`
    (TF 2.21): a stopped job ends with one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "total_run_calls" not in record.getMessage()


class _Preempted(Exception):
    """Raised by the handler's exit function once the checkpoint is saved."""


def _raise_preempted():
    raise _Preempted


class _NoStop:
    """Never stops: signals keep their default handlers."""

    raised = False

    def safe_point(self, where: str) -> None:
        del where


class HandlerStop:
    """The multi-worker stop: `safe_point` lets the handler save and end the job."""

    raised = False  # the handler stops the job, at the same safe point on every worker

    def __init__(self, handler, flag: signals.StopFlag, output_dir: str):
        self.handler = handler
        self.flag = flag
        self.output_dir = output_dir

    def safe_point(self, where: str) -> None:
        """Call at the same point on every worker (e.g. between chunks of steps).

        Raises:
            KeyboardInterrupt: a worker was told to stop; the checkpoint is saved.
        """
        try:
            self.handler.save_checkpoint_if_preempted()
        except tf.errors.AlreadyExistsError:
            # Told to stop after another worker passed its last safe point (and shut its
            # handler down): there is nothing left to checkpoint together; the job finishes.
            pass
        except _Preempted:
            who = "this worker" if self.flag.raised else "another worker"
            raise KeyboardInterrupt(
                f"stopped {where} ({who} was told to stop); checkpoint saved in "
                f"{self.output_dir}: run the same command on every worker to resume") from None


def _handler(strategy, manager, flag, restore_dir):
    """A handler that saves through `manager`, polls `flag` and restores nothing.

    The search restores its checkpoint itself (the newest usable one, after putting the oracle
    files back), so the handler gets a manager of an empty directory to restore from; it adds
    its run counter (`checkpointed_runs`) to the search's checkpoint.
    """
    config = tf.distribute.experimental.TerminationConfig(
        termination_watcher_fn=lambda: flag.raised, exit_fn=_raise_preempted,
        grace_period=0, save_fn=manager.save)
    nothing = tf.train.CheckpointManager(manager.checkpoint, restore_dir, max_to_keep=1)
    with strategy.scope():
        return tf.distribute.experimental.PreemptionCheckpointHandler(
            strategy.cluster_resolver, nothing, termination_config=config)


def _shut_down(handler) -> None:
    # What the handler's __del__ does; its watcher threads would otherwise block in the
    # coordination service until the interpreter exits.
    handler._stop_cluster_wise_termination_watcher_thread()  # noqa: SLF001
    handler._stop_poll_termination_signal_thread()  # noqa: SLF001


@contextlib.contextmanager
def stopper(strategy, manager: tf.train.CheckpointManager, output_dir: str):
    """Yields the search's stop object for `strategy` (see the module docstring).

    Args:
        strategy: the job's strategy.
        manager: the search's checkpoint manager; the handler saves through it.
        output_dir: named in the message a stopped job ends with.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        with signals.StopFlag() as flag:
            yield flag
        return
    flag = signals.StopFlag()
    restore_dir = tempfile.mkdtemp(prefix="di_nas_preemption_")
    try:
        handler = _handler(strategy, manager, flag, restore_dir)
        platform = getattr(getattr(handler, "_platform_device", None), "name", "")
        if platform in _INERT_PLATFORMS:
            progress.log(f"warning: TensorFlow's PreemptionCheckpointHandler does nothing on "
                         f"{platform}: a SIGTERM ends this worker at once and the job resumes "
                         "from its last epoch checkpoint")
            yield _NoStop()
            return
        quiet = _QuietDeprecation()
        tf.get_logger().addFilter(quiet)
        try:
            with flag:
                yield HandlerStop(handler, flag, output_dir)
        finally:
            tf.get_logger().removeFilter(quiet)
            _shut_down(handler)
    finally:
        shutil.rmtree(restore_dir, ignore_errors=True)
