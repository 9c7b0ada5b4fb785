"""Drawings of architectures: the cells of an `Architecture` as a graph, written to a PNG.

Pure matplotlib (Agg, no pyplot state, no graphviz binary). Nodes are labelled boxes, edges
carry their op's name; one panel per cell the space's `SearchSpace.drawing` returns (normal
and reduce for enas_micro, the one cell of nb201). This module reads architectures; it builds
no models and knows no space: imports `search_space.base`, `di_nas.io` and matplotlib only.
"""

from __future__ import annotations

import io

from di_nas import io as io_lib
from di_nas.search_space.base import Architecture, DrawnCell, DrawnEdge

NODE_STYLE = {"input": "#cfe2f3", "node": "#fff2cc", "output": "#d9ead3"}
X_STEP, Y_STEP = 3.0, 1.8  # Distance between columns and rows of nodes (data units).
INCHES = 0.8  # Figure inches per data unit.


def cells(arch: Architecture) -> list[DrawnCell]:
    """The panels to draw for `arch`: node boxes with positions (data units), labelled edges."""
    panels = []
    for cell in arch.space.drawing(arch.values):
        nodes = {key: (label, kind, (X_STEP * column, Y_STEP * row))
                 for key, (label, kind, (column, row)) in cell.nodes.items()}
        panels.append(cell._replace(nodes=nodes))
    return panels


def _draw_cell(ax, cell: DrawnCell) -> None:
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


def _label_point(cell: DrawnCell, p1, p2, rad: float, placed) -> tuple[float, float]:
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


def _blocked(cell: DrawnCell, edge: DrawnEdge) -> bool:
    """Whether the straight line of `edge` runs through another node's box."""
    (x1, y1), (x2, y2) = cell.nodes[edge.src][2], cell.nodes[edge.dst][2]
    others = [xy for key, (_, _, xy) in cell.nodes.items() if key not in (edge.src, edge.dst)]
    points = [(x1 + t / 20 * (x2 - x1), y1 + t / 20 * (y2 - y1)) for t in range(1, 20)]
    return any(abs(px - x) < 0.9 and abs(py - y) < 0.45 for px, py in points for x, y in others)


def _span(cell: DrawnCell) -> tuple[float, float]:
    xs = [xy[0] for _, _, xy in cell.nodes.values()]
    ys = [xy[1] for _, _, xy in cell.nodes.values()]
    return max(xs) - min(xs) + 2.0, max(ys) - min(ys) + 2.4


def _has_twin(cell: DrawnCell, edge: DrawnEdge) -> bool:
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
    io_lib.atomic_write_bytes(path, buf.getvalue())
