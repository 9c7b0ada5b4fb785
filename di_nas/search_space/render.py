"""Drawings of architectures: the cells of an `Architecture` as a graph, written to a PNG.

Pure matplotlib (Agg, no pyplot state, no graphviz binary). Nodes are labelled boxes, edges
carry their op's name; one panel per cell (normal and reduce for enas_micro, the one cell of
nb201). This module reads architectures; it builds no models.
"""

from __future__ import annotations

import io
import os
from typing import NamedTuple

from di_nas.search_space import enas_micro, nb201
from di_nas.search_space.base import Architecture

NODE_STYLE = {"input": "#cfe2f3", "node": "#fff2cc", "output": "#d9ead3"}
X_STEP, Y_STEP = 3.0, 1.8  # Distance between columns and rows of nodes (data units).
INCHES = 0.8  # Figure inches per data unit.


class _Edge(NamedTuple):
    src: str
    dst: str
    label: str
    faint: bool = False


class _Cell(NamedTuple):
    title: str
    nodes: dict  # key -> (label, kind, (x, y))
    edges: list


def _enas_cell(values, cell: int) -> _Cell:
    cell_values = values[cell * enas_micro.PER_CELL:(cell + 1) * enas_micro.PER_CELL]
    depth = {0: 0, 1: 0}
    edges = []
    for node in range(enas_micro.NUM_NODES):
        ins = []
        for slot in range(2):
            i, o = enas_micro.decision_index(cell, node, slot)
            ins.append(values[i])
            edges.append(_Edge(str(values[i]), str(node + 2), enas_micro.OPS[values[o]]))
        depth[node + 2] = 1 + max(depth[i] for i in ins)
    loose = [n + 2 for n in enas_micro.loose_ends(cell_values)]
    out_depth = 1 + max(depth[n] for n in loose)
    columns: dict[int, list[int]] = {}
    for n, d in depth.items():
        columns.setdefault(d, []).append(n)
    nodes = {}
    for d, members in columns.items():
        for rank, n in enumerate(members):
            # Columns alternate half a row up/down so straight edges do not run through boxes.
            y = (len(members) - 1) / 2 - rank + (0.5 if d % 2 else 0.0)
            label = ("c_{k-2}", "c_{k-1}")[n] if n < 2 else f"node {n}"
            nodes[str(n)] = (label, "input" if n < 2 else "node", (X_STEP * d, Y_STEP * y))
    nodes["out"] = ("c_{k} (concat)", "output", (X_STEP * out_depth, 0.0))
    edges += [_Edge(str(n), "out", "", faint=True) for n in loose]
    return _Cell(f"{enas_micro.CELLS[cell]} cell", nodes, edges)


def _nb201_cell(values) -> _Cell:
    positions = {0: (0.0, 0.0), 1: (X_STEP, Y_STEP), 2: (2 * X_STEP, -Y_STEP),
                 3: (3 * X_STEP, 0.0)}
    nodes = {}
    for n, xy in positions.items():
        kind = "input" if n == 0 else "output" if n == nb201.NUM_NODES - 1 else "node"
        label = {0: "node 0 (in)", nb201.NUM_NODES - 1: f"node {n} (out)"}.get(n, f"node {n}")
        nodes[str(n)] = (label, kind, xy)
    edges = [_Edge(str(src), str(dst), nb201.OPS[values[e]], faint=values[e] == 0)
             for e, (src, dst) in enumerate(nb201.EDGES)]
    return _Cell("cell (every stage)", nodes, edges)


def cells(arch: Architecture) -> list[_Cell]:
    """The panels to draw for `arch`: node boxes with positions and labelled edges."""
    if arch.space_name == enas_micro.NAME:
        return [_enas_cell(arch.values, c) for c in range(len(enas_micro.CELLS))]
    if arch.space_name == nb201.NAME:
        return [_nb201_cell(arch.values)]
    raise ValueError(f"no drawing for search space {arch.space_name!r}")


def _draw_cell(ax, cell: _Cell) -> None:
    from matplotlib.patches import FancyArrowPatch

    ax.set_title(cell.title, fontsize=12, fontweight="bold")
    ax.set_aspect("equal")
    ax.axis("off")
    xs = [xy[0] for _, _, xy in cell.nodes.values()]
    ys = [xy[1] for _, _, xy in cell.nodes.values()]
    ax.set_xlim(min(xs) - 1.0, max(xs) + 1.0)
    ax.set_ylim(min(ys) - 1.2, max(ys) + 1.2)
    centre = (min(ys) + max(ys)) / 2
    seen: dict[tuple[str, str], int] = {}
    placed: list[tuple[float, float]] = []
    for edge in cell.edges:
        (x1, y1), (x2, y2) = cell.nodes[edge.src][2], cell.nodes[edge.dst][2]
        k = seen.get((edge.src, edge.dst), 0)
        seen[(edge.src, edge.dst)] = k + 1
        # Parallel edges (same endpoints) bend apart; long edges bend a little to skip boxes.
        rad = (0.25 if k % 2 == 0 else -0.25) if k or _has_twin(cell, edge) else 0.0
        if not rad and not edge.faint and _blocked(cell, edge):
            # Long edges bow away from the middle of the cell, past the boxes between.
            rad = -0.3 if (y1 + y2) / 2 >= centre else 0.3
        style = dict(color="#999999", linestyle=":") if edge.faint else dict(color="#333333")
        ax.add_patch(FancyArrowPatch((x1, y1), (x2, y2), connectionstyle=f"arc3,rad={rad}",
                                     arrowstyle="-|>", mutation_scale=12, lw=1.2,
                                     shrinkA=30, shrinkB=30, zorder=1, **style))
        if edge.label:
            mx, my = _label_point(cell, (x1, y1), (x2, y2), rad, placed)
            placed.append((mx, my))
            ax.text(mx, my, edge.label, ha="center", va="center", fontsize=8, zorder=3,
                    color="#777777" if edge.faint else "#000000",
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.9))
    for label, kind, (x, y) in cell.nodes.values():
        ax.text(x, y, label, ha="center", va="center", fontsize=9, zorder=4,
                bbox=dict(boxstyle="round,pad=0.4", fc=NODE_STYLE[kind], ec="#444444"))


def _label_point(cell: _Cell, p1, p2, rad: float, placed) -> tuple[float, float]:
    """A point on the `arc3` curve from `p1` to `p2`, as central as possible but off the boxes
    and the labels `placed` so far."""
    (x1, y1), (x2, y2) = p1, p2
    cx, cy = (x1 + x2) / 2 + rad * (y2 - y1), (y1 + y2) / 2 - rad * (x2 - x1)
    boxes = [(x, y, 0.9, 0.45) for _, _, (x, y) in cell.nodes.values()]
    boxes += [(x, y, 1.7, 0.35) for x, y in placed]  # Half sizes of boxes and labels.
    point = None
    for t in (0.5, 0.4, 0.6, 0.3, 0.7, 0.2, 0.8):
        a, b, c = (1 - t) ** 2, 2 * t * (1 - t), t ** 2  # The quadratic Bezier `arc3` draws.
        point = (a * x1 + b * cx + c * x2, a * y1 + b * cy + c * y2)
        if all(abs(point[0] - x) > w or abs(point[1] - y) > h for x, y, w, h in boxes):
            return point
    return (x1 + x2) / 2 + 0.5 * rad * (y2 - y1), (y1 + y2) / 2 - 0.5 * rad * (x2 - x1)


def _blocked(cell: _Cell, edge: _Edge) -> bool:
    """Whether the straight line of `edge` runs through another node's box."""
    (x1, y1), (x2, y2) = cell.nodes[edge.src][2], cell.nodes[edge.dst][2]
    others = [xy for key, (_, _, xy) in cell.nodes.items() if key not in (edge.src, edge.dst)]
    points = [(x1 + t / 20 * (x2 - x1), y1 + t / 20 * (y2 - y1)) for t in range(1, 20)]
    return any(abs(px - x) < 0.9 and abs(py - y) < 0.45 for px, py in points for x, y in others)


def _span(cell: _Cell) -> tuple[float, float]:
    xs = [xy[0] for _, _, xy in cell.nodes.values()]
    ys = [xy[1] for _, _, xy in cell.nodes.values()]
    return max(xs) - min(xs) + 2.0, max(ys) - min(ys) + 2.4


def _has_twin(cell: _Cell, edge: _Edge) -> bool:
    return sum(1 for e in cell.edges if (e.src, e.dst) == (edge.src, edge.dst)) > 1


def render_architecture(arch: Architecture, path: str, dpi: int = 110) -> None:
    """Draws the cells of `arch` into the PNG `path`, written atomically (tmp + rename)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = cells(arch)
    spans = [_span(c) for c in panels]
    width = max(w for w, _ in spans) * INCHES
    heights = [h for _, h in spans]
    fig = Figure(figsize=(width, sum(heights) * INCHES + 0.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels), 1, squeeze=False,
                        gridspec_kw={"height_ratios": heights})[:, 0]
    for ax, cell in zip(axes, panels, strict=True):
        _draw_cell(ax, cell)
    fig.suptitle(f"{arch.space_name}: {arch}".replace(" | ", "\n"), fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    _write_atomically(path, buf.getvalue())


def _write_atomically(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp"
    if "://" in path:  # Remote storage (e.g. gs://): through TensorFlow's file system layer.
        import tensorflow as tf

        with tf.io.gfile.GFile(tmp, "wb") as f:
            f.write(data)
        tf.io.gfile.rename(tmp, path, overwrite=True)
        return
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
