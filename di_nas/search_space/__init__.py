"""Search spaces: architectures as pure data, and the registry of spaces (no model building).

`get_space(name)` is the one way from a space's name to its `SearchSpace`;
`registry.entry(name)` also finds its supernet and child builders. Architecture files are read
and validated here.

Imports: the standard library, numpy, `di_nas.errors`, `di_nas.io` and `di_nas.ops`; never
TensorFlow or Keras at import time (`di_nas.config` imports the registry), never supernets,
children, training or flags (the registry names its model modules by import path).
"""

from __future__ import annotations

import json
from typing import Any

from di_nas import io
from di_nas.errors import UserError
from di_nas.search_space import registry
from di_nas.search_space.base import Architecture, Decision, SearchSpace

__all__ = ["Architecture", "Decision", "SearchSpace", "get_space", "architecture_from_dict",
           "load_architecture"]


def get_space(name: str) -> SearchSpace:
    """The search space called `name` (one shared instance per name).

    Raises:
      UserError: no space is called `name`.
    """
    return registry.entry(name).space


def architecture_from_dict(data: Any, expected_space: str | None = None) -> Architecture:
    """Validates a decoded architecture JSON object."""
    if not isinstance(data, dict) or "space" not in data or "values" not in data:
        raise UserError("architecture JSON must be an object with 'space' and 'values': "
                        "use a best_architecture.json written by di-nas-search")
    if expected_space is not None and data["space"] != expected_space:
        raise UserError(f"architecture is from space '{data['space']}' but this job uses "
                        f"'{expected_space}': pass --space={data['space']} or another file")
    if not isinstance(data["values"], list):
        raise UserError("architecture 'values' must be a list of integers")
    return get_space(data["space"]).architecture(data["values"])


def load_architecture(path: str, expected_space: str | None = None) -> Architecture:
    """Reads and validates an architecture JSON file, with one clear error per problem."""
    if not path:
        raise UserError("no architecture given: pass --architecture=DIR/best_architecture.json "
                        "(written by di-nas-search into its --output_dir)")
    if not io.exists(path):
        raise UserError(f"architecture file {path} does not exist: pass the "
                        "best_architecture.json that di-nas-search wrote")
    try:
        data = io.read_json(path)
    except json.JSONDecodeError as e:
        raise UserError(f"architecture file {path} is not valid JSON ({e.msg} at line "
                        f"{e.lineno}): regenerate it with di-nas-search") from None
    except UnicodeDecodeError:
        raise UserError(f"architecture file {path} is not UTF-8 text: pass the "
                        "best_architecture.json that di-nas-search wrote") from None
    try:
        return architecture_from_dict(data, expected_space)
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
