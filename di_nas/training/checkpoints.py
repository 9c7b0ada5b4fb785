"""Atomic, resumable checkpoints under a job's ``--output_dir`` (files: ``di_nas.io``).

``CheckpointKeeper`` wraps ``tf.train.Checkpoint`` + ``tf.train.CheckpointManager``. A save
writes the new checkpoint's files first and only then replaces the small ``checkpoint`` state
file (atomically, write-to-temp + rename), and deletes old checkpoints last; so a job killed at
any moment of a save still restores the previous checkpoint (tests/test_final.py checks this).

This module is generic: it knows nothing of models, epochs or what the trackables are, and it
must not build models or datasets.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf


class CheckpointKeeper:
    """Saves and restores a fixed set of trackables in one directory.

    Example::

        keeper = CheckpointKeeper(os.path.join(output_dir, "checkpoints"),
                                  model=model, optimizer=optimizer, epoch=epoch_var)
        if keeper.restore_latest():  # the path restored, or None
            ...  # resume after epoch_var
        for epoch in ...:
            ...
            epoch_var.assign(epoch)
            keeper.save(epoch)

    Optimizers with lazily created slots (Keras 3) must be built before ``restore_latest`` so
    every variable exists when the checkpoint is read.
    """

    def __init__(self, directory: str, max_to_keep: int = 2, **trackables: Any):
        if not trackables:
            raise ValueError("CheckpointKeeper needs at least one trackable")
        self.directory = directory
        self.checkpoint = tf.train.Checkpoint(**trackables)
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory,
                                                  max_to_keep=max_to_keep,
                                                  checkpoint_name="ckpt")

    @property
    def latest(self) -> str | None:
        """Path prefix of the newest complete checkpoint, or None."""
        return self.manager.latest_checkpoint

    def restore_latest(self, directory: str | None = None) -> str | None:
        """Restores the newest complete checkpoint; returns its path, or None (and changes
        nothing) when there is none.

        Args:
            directory: where to look, by default where this keeper saves. Multi-worker jobs
                save on non-chief workers to throwaway directories but restore the chief's.

        Every saved value must find its variable (a checkpoint of another network is an
        error), while trackables added since the save may stay at their initial values.
        """
        path = self.latest if directory is None else latest_checkpoint(directory)
        if path is None:
            return None
        self.checkpoint.restore(path).assert_existing_objects_matched()
        return path

    def save(self, number: int) -> str:
        """Writes checkpoint ``number`` (e.g. the epoch just finished); returns its prefix."""
        tf.io.gfile.makedirs(self.directory)
        return self.manager.save(checkpoint_number=int(number))


def latest_checkpoint(directory: str) -> str | None:
    """The newest complete checkpoint in ``directory`` (None if none), without building anything."""
    if not tf.io.gfile.isdir(directory):
        return None
    return tf.train.latest_checkpoint(directory)


def restore_partial(path: str, **trackables: Any) -> None:
    """Restores only ``trackables`` from checkpoint ``path`` (e.g. a model without its optimizer).

    Raises:
        AssertionError: a variable of ``trackables`` is missing from the checkpoint.
    """
    status = tf.train.Checkpoint(**trackables).restore(path)
    status.expect_partial()  # the optimizer and counters in the file are not wanted here
    status.assert_existing_objects_matched()


def checkpoint_number(path: str) -> int:
    """The number ``N`` of a ``.../ckpt-N`` prefix."""
    return int(path.rsplit("-", 1)[1])
