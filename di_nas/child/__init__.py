"""Standalone Keras networks of an architecture: final training, export and the Python API.

`build_child` builds the network of any registered space through `search_space.registry`;
each space's network is in its own module (`enas.py`, `nb201.py`), the parts they share in
`base.py`. Imports `search_space`, `ops`, `supernet` (layouts, site names and the batch-norm
epsilon; never a supernet's weights) and Keras; never training loops, studies or flags.
"""

from __future__ import annotations

import keras

from di_nas.child.base import DropPath, load_path_weights, set_drop_path_scale
from di_nas.search_space import registry
from di_nas.search_space.base import Architecture

__all__ = ["DropPath", "build_child", "load_path_weights", "set_drop_path_scale"]


def build_child(arch: Architecture, num_classes: int, image_shape, num_layers: int = 6,
                filters: int = 20, stem_multiplier: int = 3, name: str = "child", *,
                auxiliary: bool = False, drop_path: float = 0.0,
                cell_residual: bool = False) -> keras.Model:
    """The standalone network of `arch` at the given depth and width (logits out).

    Args:
        num_layers: depth: normal cells for enas_micro, cells per stage for nb201.
        auxiliary: add DARTS' auxiliary head after the last reduction cell; the model then
            returns ``[logits, aux_logits]`` (spaces whose registry entry has `child_extras`).
        drop_path: maximum drop-path probability of a non-identity op (training only; the
            last cell uses it, earlier cells proportionally less; `child_extras` spaces only).
        cell_residual: add each cell's second input to its output, as the supernet does with
            `SpaceConfig.cell_residual` (enas_micro; other spaces ignore it).

    Raises:
        ValueError: `auxiliary` or `drop_path` for a space without `child_extras`.
    """
    return registry.entry(arch.space_name).build_child(
        arch, num_classes, image_shape, num_layers=num_layers, filters=filters,
        stem_multiplier=stem_multiplier, name=name, auxiliary=auxiliary, drop_path=drop_path,
        cell_residual=cell_residual)
