"""The op table of NAS-Bench-201 (Dong & Yang, 2020), in the benchmark's encoding order.

Data only: imports `ops.base`, nothing else.
"""

from __future__ import annotations

from di_nas.ops.base import AVG_POOL, CONV, IDENTITY, ZERO, Op

OPS = (
    Op("none", ZERO),
    Op("skip_connect", IDENTITY),
    Op("conv_1x1", CONV, 1),
    Op("conv_3x3", CONV, 3),
    Op("avg_pool_3x3", AVG_POOL, 3),
)
