"""The op table of the ENAS micro space (Pham et al., 2018), in encoding order.

Data only: imports `ops.base`, nothing else.
"""

from __future__ import annotations

from di_nas.ops.base import AVG_POOL, IDENTITY, MAX_POOL, SEP_CONV, Op

OPS = (
    Op("sep_conv_3x3", SEP_CONV, 3, short="sep3", stacks=2),
    Op("sep_conv_5x5", SEP_CONV, 5, short="sep5", stacks=2),
    Op("avg_pool_3x3", AVG_POOL, 3, short="avg3"),
    Op("max_pool_3x3", MAX_POOL, 3, short="max3"),
    Op("identity", IDENTITY, short="id"),
)
