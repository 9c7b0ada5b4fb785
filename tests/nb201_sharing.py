"""nb201 architectures that share one searched kernel, for the DI tests (`test_di*.py`).

The properties those tests check are the DI update's, not the space's; the small nb201
supernet traces several times faster than enas_micro.
"""

from di_nas.ops.nb201 import OPS
from di_nas.search_space.nb201 import EDGES

SPACE = "nb201"
# Kernels every architecture from `sharing` uses: the head, the stem and the first cell's
# conv 3x3 on the edge from the cell's input (the same input for all of them).
SITES = ("head-kernel", "stem-kernel", "L0-e0-conv3x3-kernel")
_OP = {op.name: index for index, op in enumerate(OPS)}


def sharing(space, rng):
    """A random architecture with conv 3x3 on the cell's edge 1<-0 and node 1 feeding the
    output (3<-1 a skip), so that the conv is on its path."""
    values = space.sample(rng).to_array()
    values[EDGES.index((0, 1))] = _OP["conv_3x3"]
    values[EDGES.index((1, 3))] = _OP["skip_connect"]
    return space.architecture(values)
