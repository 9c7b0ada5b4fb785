"""Architectures handed to the API (objects, values or JSON paths) and their Keras networks.

May import the library packages below ``api``; never ``di_nas.cli`` or the other API modules.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

from di_nas.config import Config
from di_nas.errors import UserError


@contextlib.contextmanager
def architecture_file(architecture: Any) -> Iterator[str]:
    """Yields a path to the architecture's JSON: the path given, or a temporary file that is
    removed when the block ends."""
    if hasattr(architecture, "best_architecture"):  # A SearchResult.
        architecture = architecture.best_architecture
    if isinstance(architecture, str):
        yield architecture
        return
    if not hasattr(architecture, "save"):
        raise UserError(f"architecture must be a JSON path, an Architecture or a "
                        f"SearchResult, got {type(architecture).__name__}")
    folder = tempfile.mkdtemp(prefix="di_nas_arch_")
    try:
        path = os.path.join(folder, "architecture.json")
        architecture.save(path)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def model_spec(architecture: Any, cfg: Config):
    """The ``ModelSpec`` (network and input statistics) of ``architecture`` under ``cfg``."""
    from di_nas.training import final

    with architecture_file(architecture) as path:
        cfg = cfg.replace(final={"architecture": path})
        return final._prepare(cfg)[2]  # pylint: disable=protected-access
