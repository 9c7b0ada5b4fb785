"""Macro layouts shared by the supernets and the standalone child networks.

Pure Python: which layers reduce resolution and how many channels each has. Keeping this in
one place is what lets a child network reproduce its supernet path exactly.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class LayerPlan:
    index: int
    reduction: bool
    channels: int


def enas_layers(num_layers: int, filters: int) -> list[LayerPlan]:
    """ENAS micro: `num_layers` normal cells plus 2 reduction cells at 1/3 and 2/3 of depth.

    As in the ENAS reference code, a reduction layer doubles the channels, halves the
    resolution with a factorized reduction of the previous output, and then runs the reduction
    cell at stride 1 on (previous output, reduced previous output).
    """
    pool_distance = max(num_layers // 3, 1)
    pool_layers = {pool_distance, 2 * pool_distance + 1}
    plans, channels = [], filters
    for index in range(num_layers + 2):
        reduction = index in pool_layers
        if reduction:
            channels *= 2
        plans.append(LayerPlan(index, reduction, channels))
    return plans


def nb201_stages(num_cells: int, filters: int) -> list[LayerPlan]:
    """NAS-Bench-201: 3 stages of `num_cells` cells, residual reduction blocks between them.

    Entries with `reduction=True` are the residual blocks (no searched cell).
    """
    plans, channels, index = [], filters, 0
    for stage in range(3):
        if stage > 0:
            channels *= 2
            plans.append(LayerPlan(index, True, channels))
            index += 1
        for _ in range(num_cells):
            plans.append(LayerPlan(index, False, channels))
            index += 1
    return plans
