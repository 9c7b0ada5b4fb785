"""The ENAS micro-cell search space (Pham et al., 2018), as pure data.

Two cells, normal then reduction, each of `NUM_NODES` nodes. Node `i` picks two inputs among the
two cell inputs (0: the cell before the previous one, 1: the previous cell) and the earlier nodes
(2 + j for node j), and one op for each input; its output is the sum of the two op outputs. The
cell's output concatenates the nodes that no other node of the cell reads. Encoded as ENAS does:
four integers per node, (input_x, op_x, input_y, op_y): 20 per cell, 40 per architecture.
"""

from __future__ import annotations

from di_nas.search_space.base import Decision, SearchSpace

NAME = "enas_micro"
NUM_NODES = 5
CELLS = ("normal", "reduce")
OPS = ("sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3", "identity")
SHORT = {"sep_conv_3x3": "sep3", "sep_conv_5x5": "sep5", "avg_pool_3x3": "avg3",
         "max_pool_3x3": "max3", "identity": "id"}
PER_NODE = 4
PER_CELL = NUM_NODES * PER_NODE


def decision_index(cell: int, node: int, slot: int) -> tuple[int, int]:
    """Positions of (input, op) of `slot` (0: x, 1: y) of `node` in `cell` in the encoding."""
    base = cell * PER_CELL + node * PER_NODE + 2 * slot
    return base, base + 1


def loose_ends(cell_values, num_nodes: int = NUM_NODES) -> list[int]:
    """Nodes (0-based) of one cell that no other node reads: the cell concatenates these."""
    used = set()
    for node in range(num_nodes):
        for slot in range(2):
            inp = cell_values[node * PER_NODE + 2 * slot]
            if inp >= 2:
                used.add(inp - 2)
    return [n for n in range(num_nodes) if n not in used]


class EnasMicroSpace(SearchSpace):
    """The ENAS micro space; `describe` prints `cell: node=op(input)+op(input); ...`."""

    def __init__(self):
        decisions = []
        for cell_name in CELLS:
            for node in range(NUM_NODES):
                for slot_name in "xy":
                    prefix = f"{cell_name}/n{node + 2}/{slot_name}"
                    decisions.append(Decision(f"{prefix}/input", node + 2, "input"))
                    decisions.append(Decision(f"{prefix}/op", len(OPS), "op"))
        super().__init__(NAME, decisions, OPS)

    def cell_values(self, values, cell: int) -> tuple[int, ...]:
        return tuple(values[cell * PER_CELL:(cell + 1) * PER_CELL])

    def describe(self, values) -> str:
        parts = []
        for cell, cell_name in enumerate(CELLS):
            nodes = []
            for node in range(NUM_NODES):
                terms = []
                for slot in range(2):
                    i, o = decision_index(cell, node, slot)
                    terms.append(f"{SHORT[OPS[values[o]]]}({values[i]})")
                nodes.append(f"{node + 2}={'+'.join(terms)}")
            out = ",".join(str(n + 2) for n in loose_ends(self.cell_values(values, cell)))
            parts.append(f"{cell_name}: {' '.join(nodes)} -> concat({out})")
        return " | ".join(parts)
