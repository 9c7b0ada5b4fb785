"""The NAS-Bench-201 cell space (Dong & Yang, 2020), as pure data.

A cell of 4 nodes; every node j > 0 sums one op applied to each earlier node, so there are 6
edges, each choosing one of 5 ops (`di_nas.ops.nb201.OPS`); the cell's output is node 3.
5**6 = 15625 architectures, small enough for studies that train many of them. Edges are
encoded in the order (1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2). Pure data: imports `ops`
and `search_space.base` only, never TensorFlow or a model.
"""

from __future__ import annotations

from di_nas.ops.base import ZERO
from di_nas.ops.nb201 import OPS
from di_nas.search_space.base import Decision, DrawnCell, DrawnEdge, SearchSpace

NAME = "nb201"
NUM_NODES = 4
EDGES = tuple((src, dst) for dst in range(1, NUM_NODES) for src in range(dst))
_POSITIONS = {0: (0, 0), 1: (1, 1), 2: (2, -1), 3: (3, 0)}  # Drawing grid (column, row).


def is_degenerate(values) -> bool:
    """Whether the cell's output (node 3) is zero whatever its input: no path from node 0 to
    node 3 avoids the zero op (`none`)."""
    reached = [True] + [False] * (NUM_NODES - 1)
    for edge, (src, dst) in enumerate(EDGES):  # Ordered by destination node.
        if OPS[values[edge]].kind != ZERO and reached[src]:
            reached[dst] = True
    return not reached[-1]


class Nb201Space(SearchSpace):
    """NAS-Bench-201; `describe` prints the benchmark's own string form."""

    def __init__(self):
        decisions = [Decision(f"edge_{dst}<-{src}", len(OPS), "op") for src, dst in EDGES]
        super().__init__(NAME, decisions, OPS)

    def describe(self, values) -> str:
        nodes = []
        for dst in range(1, NUM_NODES):
            terms = [f"{OPS[values[e]].name}~{src}" for e, (src, d) in enumerate(EDGES)
                     if d == dst]
            nodes.append("|" + "|".join(terms) + "|")
        return "+".join(nodes)

    def drawing(self, values) -> list[DrawnCell]:
        """The one cell every stage repeats; edges taking the zero op are faint."""
        nodes = {}
        for n, xy in _POSITIONS.items():
            kind = "input" if n == 0 else "output" if n == NUM_NODES - 1 else "node"
            label = {0: "node 0 (in)", NUM_NODES - 1: f"node {n} (out)"}.get(n, f"node {n}")
            nodes[str(n)] = (label, kind, xy)
        edges = [DrawnEdge(str(src), str(dst), OPS[values[e]].name,
                           faint=OPS[values[e]].kind == ZERO)
                 for e, (src, dst) in enumerate(EDGES)]
        return [DrawnCell("cell (every stage)", nodes, edges)]


SPACE = Nb201Space()
