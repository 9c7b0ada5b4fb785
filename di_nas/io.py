"""Files of a job: atomic writes, JSON reads and the one-writer lock of an output directory.

Every file di-nas writes goes through ``atomic_write_bytes`` (or its text/JSON forms): the
content goes to a unique temporary file next to the target, which is then renamed over it, so
a reader (or a job resumed after a kill) sees the old file or the new one, never half of one.
Atomicity is against the death of the process, not against power loss (nothing is fsynced).
Local paths use the standard library; URLs (``gs://...``) go through ``tf.io.gfile``, imported
only then.

``OutputLock`` makes a job the only writer of its ``--output_dir``: an advisory ``fcntl``
lock on ``<dir>/.lock``, which also names the holder (pid and host). The kernel releases the
lock when its process dies, so a lock left by a killed job is simply taken over.

This module must not import TensorFlow at import time, nor anything else of di_nas but
``di_nas.errors``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import uuid
from typing import Any

from di_nas.errors import UserError

LOCK_FILE = ".lock"


def is_local(path: str) -> bool:
    """Whether ``path`` is a local file (not a URL such as ``gs://bucket/x``)."""
    return "://" not in str(path)


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def exists(path: str) -> bool:
    """Whether ``path`` exists (a file or a directory)."""
    return os.path.exists(path) if is_local(path) else _gfile().exists(path)


def makedirs(path: str) -> None:
    """Creates directory ``path`` and its parents (no error when it exists)."""
    if is_local(path):
        os.makedirs(path, exist_ok=True)
    else:
        _gfile().makedirs(path)


def remove(path: str) -> None:
    """Removes file or directory tree ``path``; nothing happens when it is absent."""
    if is_local(path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            os.remove(path)
    elif _gfile().isdir(path):
        _gfile().rmtree(path)
    elif _gfile().exists(path):
        _gfile().remove(path)


def temp_path(path: str) -> str:
    """A unique temporary name next to ``path`` (same directory, so a rename is atomic)."""
    return f"{path}.tmp-{uuid.uuid4().hex[:8]}"


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Writes ``data`` to ``path`` so that a reader sees the old file or the new one, never half."""
    tmp = temp_path(path)
    try:
        if is_local(path):
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        else:
            with _gfile().GFile(tmp, "wb") as f:
                f.write(data)
            _gfile().rename(tmp, path, overwrite=True)
    finally:
        if exists(tmp):
            remove(tmp)


def atomic_write_text(path: str, text: str) -> None:
    """``atomic_write_bytes`` of ``text`` encoded as UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(x):
    if hasattr(x, "item") and callable(x.item):  # numpy scalars
        return x.item()
    raise TypeError(f"{type(x).__name__} is not JSON serialisable")


def atomic_write_json(path: str, value: Any, compact: bool = False) -> None:
    """``atomic_write_text`` of ``value`` as JSON: indented and key-sorted with a final newline,
    or one compact line when ``compact``. Numpy scalars are written as numbers."""
    if compact:
        text = json.dumps(value, default=_json_default)
    else:
        text = json.dumps(value, indent=2, sort_keys=True, default=_json_default) + "\n"
    atomic_write_text(path, text)


def read_text(path: str) -> str | None:
    """The text of file ``path``, or None when there is no such file."""
    if is_local(path):
        try:
            with open(path, encoding="utf-8") as f:
                return f.read()
        except FileNotFoundError:
            return None
    if not _gfile().exists(path):
        return None
    with _gfile().GFile(path) as f:
        return f.read()


def read_json(path: str) -> Any | None:
    """The decoded JSON file at ``path``, or None when there is no such file.

    Raises:
        json.JSONDecodeError: the file is not JSON.
    """
    text = read_text(path)
    return None if text is None else json.loads(text)


def replace_dir(new: str, path: str) -> None:
    """Renames directory ``new`` to ``path``, replacing what was there (old one removed last)."""
    old = None
    if exists(path):
        old = f"{path}.old-{uuid.uuid4().hex[:8]}"
        _rename(path, old)
    _rename(new, path)
    if old:
        remove(old)


def _rename(src: str, dst: str) -> None:
    if is_local(src):
        os.rename(src, dst)
    else:
        _gfile().rename(src, dst)


class OutputLock:
    """Exclusive ownership of an output directory for the life of one job.

    Example::

        with OutputLock(cfg.output_dir, "di-nas-search"):
            ...  # only this process writes into cfg.output_dir

    The directory is created on ``acquire``. URLs cannot be locked (no shared file lock on
    object stores) and are left unlocked.

    Raises:
        UserError: another live process holds the directory (the message names it).
    """

    def __init__(self, directory: str, job: str = "di-nas"):
        self.directory = directory
        self.job = job
        self._fd = None

    def acquire(self) -> OutputLock:
        import fcntl

        if not is_local(self.directory):
            return self
        path = os.path.join(self.directory, LOCK_FILE)
        try:
            makedirs(self.directory)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise UserError(f"cannot write to --output_dir={self.directory} ({e.strerror}): "
                            "choose a writable directory") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 4096).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise UserError(f"--output_dir={self.directory} is in use by {holder}: wait for it "
                            "to finish, stop it, or choose another --output_dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{self.job} (pid {os.getpid()} on {socket.gethostname()})\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        """Releases the lock (the lock file stays: removing it would race a new holder)."""
        if self._fd is not None:
            import fcntl

            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
