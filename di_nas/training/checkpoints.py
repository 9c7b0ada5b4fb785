"""Atomic, resumable checkpoints under a job's ``--output_dir`` (files: ``di_nas.io``).

``CheckpointKeeper`` wraps ``tf.train.Checkpoint`` + ``tf.train.CheckpointManager``. A save
writes the new checkpoint's files first and only then replaces the small ``checkpoint`` state
file (atomically, write-to-temp + rename), and deletes old checkpoints last; so a job killed at
any moment of a save still restores the previous checkpoint (tests/test_final.py checks this).

This module is generic: it knows nothing of models, epochs or what the trackables are, and it
must not build models or datasets.
"""

from __future__ import annotations

import json
import os
from typing import Any

import tensorflow as tf

from di_nas import io as dio
from di_nas.errors import UserError
from di_nas.training import progress

CHECKPOINT_NAME = "ckpt"
FILES_KEY = "files"  # FileLedger's attribute in a search checkpoint


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
                                                  checkpoint_name=CHECKPOINT_NAME)

    @property
    def latest(self) -> str | None:
        """Path prefix of the newest complete checkpoint, or None."""
        return self.manager.latest_checkpoint

    def restore_latest(self, directory: str | None = None) -> str | None:
        """Restores the newest usable checkpoint; returns its path, or None (and changes
        nothing) when there is none. A damaged newest one is skipped with a warning
        (``newest_usable``).

        Args:
            directory: where to look, by default where this keeper saves. Multi-worker jobs
                save on non-chief workers to throwaway directories but restore the chief's.

        Every saved value must find its variable (a checkpoint of another network is an
        error), while trackables added since the save may stay at their initial values.
        """
        path = newest_usable(self.directory if directory is None else directory)
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


def checkpoint_paths(directory: str) -> list[str]:
    """Prefixes of the checkpoints in ``directory``, newest first.

    The ``checkpoint`` state file lists the committed ones; when it is unreadable, every
    ``ckpt-N.index`` found stands in.
    """
    if not tf.io.gfile.isdir(directory):
        return []
    try:
        state = tf.train.get_checkpoint_state(directory)
    except Exception:  # noqa: BLE001 (a damaged state file: any parse error)
        state = None
    if state is not None and state.all_model_checkpoint_paths:
        paths = list(state.all_model_checkpoint_paths)
        if state.model_checkpoint_path not in paths:
            paths.append(state.model_checkpoint_path)
        return paths[::-1]
    found = tf.io.gfile.glob(os.path.join(directory, f"{CHECKPOINT_NAME}-*.index"))
    prefixes = [f[: -len(".index")] for f in found]
    prefixes = [p for p in prefixes if p.rsplit("-", 1)[1].isdigit()]
    return sorted(prefixes, key=checkpoint_number, reverse=True)


def _damage(path: str) -> str | None:
    """None when every tensor of checkpoint ``path`` reads back (checksums included), else why."""
    try:
        reader = tf.train.load_checkpoint(path)
        for key in reader.get_variable_to_dtype_map():
            reader.get_tensor(key)
    except Exception as e:  # noqa: BLE001 (truncated files raise IndexError, OpError, ...)
        return " ".join(f"{type(e).__name__}: {e}".split())[:160]
    return None


def newest_usable(directory: str) -> str | None:
    """The newest checkpoint in ``directory`` that reads back whole, or None when there is none.

    A damaged newer one (truncated, bad checksum) is skipped with a warning.

    Raises:
        UserError: there are checkpoints but none is usable; the message says how to start over.
    """
    paths = checkpoint_paths(directory)
    for path in paths:
        why = _damage(path)
        if why is None:
            return path
        progress.log(f"warning: checkpoint {path} is unusable ({why}); trying the previous one")
    if paths:
        raise UserError(f"no usable checkpoint in {directory} (all {len(paths)} damaged): delete "
                        f"{directory} to start the job over, or choose a new --output_dir")
    return None


class FileLedger(tf.train.experimental.PythonState):
    """The files of a directory, committed with the checkpoint that holds this ledger.

    At each save the ledger records the byte size of every ``*.jsonl`` file (append-only logs)
    and the content of every other file of ``directory``. ``roll_back`` puts the directory
    back to what a checkpoint recorded: logs truncated, other files rewritten, files created
    after the save removed. A job killed between two checkpoints (e.g. the search's Keras Tuner
    oracle after some trials) thus resumes with files that match its restored variables.
    """

    def __init__(self, directory: str):
        self.directory = directory

    def _files(self) -> list[str]:
        if not tf.io.gfile.isdir(self.directory):
            return []
        return sorted(n for n in tf.io.gfile.listdir(self.directory)
                      if ".tmp" not in n and not tf.io.gfile.isdir(os.path.join(self.directory, n)))

    def serialize(self) -> str:
        record = {}
        for name in self._files():
            path = os.path.join(self.directory, name)
            if name.endswith(".jsonl"):
                record[name] = {"size": tf.io.gfile.stat(path).length}
            else:
                record[name] = {"text": dio.read_text(path)}
        return json.dumps(record)

    def deserialize(self, string) -> None:
        del string  # Files are rolled back before the job is built (``roll_back``).

    def restore_files(self, record: dict[str, dict[str, Any]],
                      source_dir: str | None = None) -> None:
        """Makes the directory match ``record`` (see the class docstring).

        Args:
            record: what a checkpoint's ledger holds.
            source_dir: a directory of the same files (another worker's) to take the logs
                this directory lacks from, up to their recorded size.
        """
        for name in self._files():
            if name not in record:
                dio.remove(os.path.join(self.directory, name))
        for name, entry in record.items():
            path = os.path.join(self.directory, name)
            if "text" in entry:
                dio.makedirs(self.directory)
                dio.atomic_write_text(path, entry["text"])
            elif dio.exists(path):
                with open(path, "r+b") as f:  # append-only logs are local files
                    f.truncate(entry["size"])
            elif source_dir and dio.exists(os.path.join(source_dir, name)):
                with open(os.path.join(source_dir, name), "rb") as f:
                    head = f.read(entry["size"])  # its writer only appends past the size
                dio.makedirs(self.directory)
                with open(path, "wb") as f:
                    f.write(head)


def roll_back(checkpoint_dir: str, files_dir: str,
              source_dir: str | None = None) -> str | None:
    """Picks the checkpoint a job resumes from and rolls ``files_dir`` back to its ledger.

    With no checkpoint, ``files_dir`` is emptied (the job starts over). Call it before
    anything reads ``files_dir``. A non-chief worker, whose ``files_dir`` is its own, passes
    the chief's as ``source_dir`` (see ``FileLedger.restore_files``).

    Returns:
        The checkpoint to restore, or None.
    """
    path = newest_usable(checkpoint_dir)
    record = {}
    if path is not None:
        reader = tf.train.load_checkpoint(path)
        key = f"{FILES_KEY}/.ATTRIBUTES/py_state"
        if not reader.has_tensor(key):
            return path  # written without a ledger: nothing to roll back
        record = json.loads(reader.get_tensor(key))
    FileLedger(files_dir).restore_files(record, source_dir)
    return path
