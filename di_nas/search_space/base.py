"""Architectures as data: a search space is a sequence of integer decisions.

This module holds the space-independent parts: `Decision`, `SearchSpace` (with its op table,
`di_nas.ops`, and the drawing of its cells as `DrawnCell` data) and the `Architecture` value
(validation, hashing, JSON, Keras Tuner `HyperParameters` values and the int32 tensor the
supernet reads). It must not build models or import TensorFlow or Keras at import time.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from di_nas.errors import UserError
from di_nas.ops import Op

FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Decision:
    """One categorical choice of an architecture.

    Attributes:
      name: unique name, also the Keras Tuner hyperparameter name.
      num_choices: the choice is an integer in [0, num_choices).
      kind: 'input' (which earlier node feeds an op) or 'op' (which operation).
    """

    name: str
    num_choices: int
    kind: str


class DrawnEdge(NamedTuple):
    """An edge of a drawn cell: from node key `src` to `dst`, labelled (faint: drawn dotted)."""

    src: str
    dst: str
    label: str
    faint: bool = False


class DrawnCell(NamedTuple):
    """One cell to draw: node key -> (label, kind, (column, row)), and the edges.

    `kind` is 'input', 'node' or 'output'; positions are in grid units (`search_space.render`
    scales them).
    """

    title: str
    nodes: dict
    edges: list


class SearchSpace:
    """A named, ordered list of decisions plus the op table of its candidate ops.

    Attributes:
      op_table: the candidate ops (`di_nas.ops.Op`) in encoding order.
      ops: their names.
    """

    def __init__(self, name: str, decisions: Sequence[Decision], op_table: Sequence[Op]):
        self.name = name
        self.decisions = tuple(decisions)
        self.op_table = tuple(op_table)
        self.ops = tuple(op.name for op in self.op_table)
        self.num_choices = np.array([d.num_choices for d in self.decisions], np.int32)

    @property
    def length(self) -> int:
        return len(self.decisions)

    def validate(self, values: Sequence[int]) -> tuple[int, ...]:
        """Returns `values` as a tuple of ints, or raises UserError naming the bad decision."""
        values = tuple(values)
        if len(values) != self.length:
            raise UserError(
                f"architecture for space '{self.name}' needs {self.length} choices, got "
                f"{len(values)}: use an architecture written for this search space")
        out = []
        for decision, value in zip(self.decisions, values, strict=True):
            if isinstance(value, bool) or not float(value).is_integer():
                raise UserError(f"choice '{decision.name}' must be an integer, got {value!r}")
            value = int(value)
            if not 0 <= value < decision.num_choices:
                raise UserError(
                    f"choice '{decision.name}'={value} is out of range "
                    f"[0, {decision.num_choices}) of space '{self.name}'")
            out.append(value)
        return tuple(out)

    def architecture(self, values: Sequence[int]) -> Architecture:
        return Architecture(self, self.validate(values))

    def sample(self, rng: np.random.Generator) -> Architecture:
        """A uniformly random architecture."""
        return Architecture(self, tuple(int(rng.integers(n)) for n in self.num_choices))

    def hyperparameters(self):
        """The space as `keras_tuner.HyperParameters`, one unordered `Choice` per decision."""
        import keras_tuner as kt  # Imported lazily: only oracles need it.

        hp = kt.HyperParameters()
        for d in self.decisions:
            hp.Choice(d.name, list(range(d.num_choices)), ordered=False)
        return hp

    def from_hp_values(self, values: Mapping[str, Any]) -> Architecture:
        missing = [d.name for d in self.decisions if d.name not in values]
        if missing:
            raise UserError(f"hyperparameter values lack {missing[:3]} of space '{self.name}'")
        return self.architecture([values[d.name] for d in self.decisions])

    def describe(self, values: Sequence[int]) -> str:  # Overridden by spaces.
        return " ".join(str(v) for v in values)

    def drawing(self, values: Sequence[int]) -> list[DrawnCell]:
        """The cells of architecture `values`, to draw (`search_space.render`)."""
        raise NotImplementedError(f"space {self.name!r} has no drawing")

    def __repr__(self) -> str:
        return f"SearchSpace({self.name!r}, {self.length} decisions)"


@dataclasses.dataclass(frozen=True)
class Architecture:
    """One point of a search space: a validated, hashable tuple of choices."""

    space: SearchSpace = dataclasses.field(compare=False, hash=False, repr=False)
    values: tuple[int, ...]
    space_name: str = dataclasses.field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "space_name", self.space.name)

    def to_tensor(self):
        import tensorflow as tf

        return tf.constant(self.values, tf.int32)

    def to_array(self) -> np.ndarray:
        return np.asarray(self.values, np.int32)

    def hp_values(self) -> dict[str, int]:
        return {d.name: v for d, v in zip(self.space.decisions, self.values, strict=True)}

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT_VERSION, "space": self.space_name, "values": list(self.values),
                "readable": str(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def save(self, path: str) -> None:
        """Writes the JSON atomically (a reader never sees half a file)."""
        from di_nas.io import atomic_write_text

        atomic_write_text(path, self.to_json() + "\n")

    def __str__(self) -> str:
        return self.space.describe(self.values)
