"""The NAS-Bench-201 cell space (Dong & Yang, 2020), as pure data.

A cell of 4 nodes; every node j > 0 sums one op applied to each earlier node, so there are 6
edges, each choosing one of 5 ops; the cell's output is node 3. 5**6 = 15625 architectures,
small enough for studies that train many of them. Edges are encoded in the order
(1<-0), (2<-0), (2<-1), (3<-0), (3<-1), (3<-2).
"""

from __future__ import annotations

from di_nas.search_space.base import Decision, SearchSpace

NAME = "nb201"
NUM_NODES = 4
OPS = ("none", "skip_connect", "conv_1x1", "conv_3x3", "avg_pool_3x3")
EDGES = tuple((src, dst) for dst in range(1, NUM_NODES) for src in range(dst))


class Nb201Space(SearchSpace):
    """NAS-Bench-201; `describe` prints the benchmark's own string form."""

    def __init__(self):
        decisions = [Decision(f"edge_{dst}<-{src}", len(OPS), "op") for src, dst in EDGES]
        super().__init__(NAME, decisions, OPS)

    def describe(self, values) -> str:
        nodes = []
        for dst in range(1, NUM_NODES):
            terms = [f"{OPS[values[e]]}~{src}" for e, (src, d) in enumerate(EDGES) if d == dst]
            nodes.append("|" + "|".join(terms) + "|")
        return "+".join(nodes)
