"""Search spaces: architectures as pure data (no model building here)."""

from __future__ import annotations

import json
from typing import Any

import tensorflow as tf

from di_nas.errors import UserError
from di_nas.search_space.base import Architecture, Decision, SearchSpace
from di_nas.search_space.enas_micro import EnasMicroSpace
from di_nas.search_space.nb201 import Nb201Space

SPACES = {"enas_micro": EnasMicroSpace, "nb201": Nb201Space}
_CACHE: dict[str, SearchSpace] = {}

__all__ = ["Architecture", "Decision", "SearchSpace", "SPACES", "get_space",
           "architecture_from_dict", "load_architecture"]


def get_space(name: str) -> SearchSpace:
    """The search space called `name` (one shared instance per name)."""
    if name not in SPACES:
        raise UserError(f"unknown search space '{name}': choose one of {sorted(SPACES)}")
    if name not in _CACHE:
        _CACHE[name] = SPACES[name]()
    return _CACHE[name]


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
    if not tf.io.gfile.exists(path):
        raise UserError(f"architecture file {path} does not exist: pass the "
                        "best_architecture.json that di-nas-search wrote")
    try:
        with tf.io.gfile.GFile(path) as f:
            data = json.load(f)
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
