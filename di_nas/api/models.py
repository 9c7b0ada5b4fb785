"""Architectures handed to the API (objects, values or JSON paths) and their Keras networks.

May import the library packages below ``api``; never ``di_nas.cli`` or the other API modules.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from di_nas.config import Config
from di_nas.errors import UserError


def architecture_file(architecture: Any) -> str:
    """A path to the architecture's JSON (written to a temporary file when needed)."""
    if hasattr(architecture, "best_architecture"):  # A SearchResult.
        architecture = architecture.best_architecture
    if isinstance(architecture, str):
        return architecture
    if not hasattr(architecture, "save"):
        raise UserError(f"architecture must be a JSON path, an Architecture or a "
                        f"SearchResult, got {type(architecture).__name__}")
    path = os.path.join(tempfile.mkdtemp(prefix="di_nas_arch_"), "architecture.json")
    architecture.save(path)
    return path


def model_spec(architecture: Any, cfg: Config):
    """The ``ModelSpec`` (network and input statistics) of ``architecture`` under ``cfg``."""
    from di_nas.training import final

    cfg = cfg.replace(final={"architecture": architecture_file(architecture)})
    return final._prepare(cfg)[2]  # pylint: disable=protected-access
