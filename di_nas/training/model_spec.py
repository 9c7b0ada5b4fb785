"""What a trained child network is: `ModelSpec`, enough to rebuild it and feed it raw pixels.

Written into final training's `final_run.json` and read back by export. This module must not
train, read flags or touch files.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
import numpy as np

from di_nas import child as child_lib
from di_nas.search_space import Architecture, get_space


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild the trained network and feed it raw pixels (export)."""

    space: str
    values: tuple[int, ...]
    num_classes: int
    image_shape: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_layers: int
    filters: int
    stem_multiplier: int
    auxiliary: bool
    drop_path: float
    dataset: str
    cell_residual: bool = False  # Absent from files written before it existed.

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelSpec:
        tuples = {"values", "image_shape", "mean", "std"}
        return cls(**{k: tuple(v) if k in tuples else v for k, v in values.items()})

    def architecture(self) -> Architecture:
        return get_space(self.space).architecture(self.values)

    def build(self) -> keras.Model:
        """The child network; returns ``[logits, aux_logits]`` when ``auxiliary``."""
        return child_lib.build_child(
            self.architecture(), self.num_classes, self.image_shape, self.num_layers,
            self.filters, self.stem_multiplier, auxiliary=self.auxiliary,
            drop_path=self.drop_path, cell_residual=self.cell_residual)


def count_params(model: keras.Model) -> int:
    """Trainable parameters of the inference network (the auxiliary head is not counted)."""
    return int(sum(np.prod(w.shape) for layer in model.layers if not layer.name.startswith("aux-")
                   for w in layer.trainable_weights))
