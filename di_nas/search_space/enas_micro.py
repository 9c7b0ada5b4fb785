"""The ENAS micro-cell search space (Pham et al., 2018), as pure data.

Two cells, normal then reduction, each of `NUM_NODES` nodes. Node `i` picks two inputs among the
two cell inputs (0: the cell before the previous one, 1: the previous cell) and the earlier nodes
(2 + j for node j), and one op for each input; its output is the sum of the two op outputs. The
cell's output concatenates the nodes that no other node of the cell reads. Encoded as ENAS does:
four integers per node, (input_x, op_x, input_y, op_y): 20 per cell, 40 per architecture. The
candidate ops are `di_nas.ops.enas_micro.OPS`. Pure data: imports `ops` and `search_space.base`
only, never TensorFlow or a model.
"""

from __future__ import annotations

from di_nas.ops.enas_micro import OPS
from di_nas.search_space.base import Decision, DrawnCell, DrawnEdge, SearchSpace

NAME = "enas_micro"
NUM_NODES = 5
CELLS = ("normal", "reduce")
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
                    terms.append(f"{OPS[values[o]].short}({values[i]})")
                nodes.append(f"{node + 2}={'+'.join(terms)}")
            out = ",".join(str(n + 2) for n in loose_ends(self.cell_values(values, cell)))
            parts.append(f"{cell_name}: {' '.join(nodes)} -> concat({out})")
        return " | ".join(parts)

    def drawing(self, values) -> list[DrawnCell]:
        """Both cells; nodes in columns by depth, the loose ends joined into the output."""
        return [self._drawn_cell(values, cell) for cell in range(len(CELLS))]

    def _drawn_cell(self, values, cell: int) -> DrawnCell:
        depth = {0: 0, 1: 0}
        edges = []
        for node in range(NUM_NODES):
            ins = []
            for slot in range(2):
                i, o = decision_index(cell, node, slot)
                ins.append(values[i])
                edges.append(DrawnEdge(str(values[i]), str(node + 2), OPS[values[o]].name))
            depth[node + 2] = 1 + max(depth[i] for i in ins)
        loose = [n + 2 for n in loose_ends(self.cell_values(values, cell))]
        columns: dict[int, list[int]] = {}
        for n, d in depth.items():
            columns.setdefault(d, []).append(n)
        nodes = {}
        for d, members in columns.items():
            for rank, n in enumerate(members):
                # Columns alternate half a row up/down so straight edges do not run through boxes.
                row = (len(members) - 1) / 2 - rank + (0.5 if d % 2 else 0.0)
                label = ("c_{k-2}", "c_{k-1}")[n] if n < 2 else f"node {n}"
                nodes[str(n)] = (label, "input" if n < 2 else "node", (d, row))
        nodes["out"] = ("c_{k} (concat)", "output", (1 + max(depth[n] for n in loose), 0.0))
        edges += [DrawnEdge(str(n), "out", "", faint=True) for n in loose]
        return DrawnCell(f"{CELLS[cell]} cell", nodes, edges)


SPACE = EnasMicroSpace()
