"""The SVG's pieces, drawn from a layout: where each row lies, a box, a cluster's frame, an edge.

The page's script redraws the same pieces when a cluster folds (compiler/picture_page.py), from the
numbers these write into the SVG (`data-row`, `data-rows`, `data-runs`) and the same metrics; with
nothing folded it draws exactly what is here. No torch.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .diagnostics import printable
from .picture_layout import BOX_WIDTH, MARGIN, Frame, Layout

BOX_HEIGHT, ROW_GAP, HEAD, TAIL = 50, 36, 22, 10
"""A row's box height, the gap between rows, the room above a cluster's first row for its name and
below its last (once for each cluster that starts or ends on that row, nested)."""
SKIP, EDGE, DASHES = "#d62728", "#555", "5 3"
"""A skipping edge's colour, any other's, and the dashes of a skipping one."""


def markup(text: str) -> str:
    """Text for SVG or HTML, as text or a quoted attribute value."""
    return html.escape(printable(text), quote=True)


def metrics(layout: Layout) -> dict[str, int]:
    """What the page's script needs to place rows as this module does."""
    return {
        "margin": MARGIN,
        "boxWidth": BOX_WIDTH,
        "boxHeight": BOX_HEIGHT,
        "rowGap": ROW_GAP,
        "head": HEAD,
        "tail": TAIL,
        "rows": layout.rows,
        "skip": SKIP,
        "edge": EDGE,
        "dashes": DASHES,
    }


@dataclass
class Rows:
    """The top of each row, and how many names each cluster's frame makes room for above and below."""

    top: list[int]
    bottom: list[int]
    heads: dict[str, int]
    tails: dict[str, int]
    height: int


def rows(layout: Layout, parents: Mapping[str, str | None]) -> Rows:
    """Rows one under another, each below the names of the clusters that start on it (a cluster
    nested in one that starts on the same row needs one more) and above the ends of those that end."""
    frames = layout.frames
    heads, tails = dict.fromkeys(frames, 1), dict.fromkeys(frames, 1)
    for path in reversed(list(frames)):  # inner clusters first
        parent = parents.get(path)
        if parent is not None:
            if frames[path].row == frames[parent].row:
                heads[parent] = max(heads[parent], heads[path] + 1)
            if _last(frames[path]) == _last(frames[parent]):
                tails[parent] = max(tails[parent], tails[path] + 1)
    above, below = [0] * layout.rows, [0] * layout.rows
    for path, frame in frames.items():
        above[frame.row] = max(above[frame.row], heads[path])
        below[_last(frame)] = max(below[_last(frame)], tails[path])
    top, y = [], MARGIN
    for row in range(layout.rows):
        y += above[row] * HEAD
        top.append(y)
        y += BOX_HEIGHT + below[row] * TAIL + ROW_GAP
    return Rows(top, [y + BOX_HEIGHT for y in top], heads, tails, y - ROW_GAP + MARGIN)


def _last(frame: Frame) -> int:
    return frame.row + frame.rows - 1


def head(title: str, width: int, height: int) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="Helvetica, Arial, sans-serif" font-size="12">',
        f"<title>{markup(title)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
        '<rect width="100%" height="100%" fill="white"/>',
    ]


def cluster(path: str, parent: str | None, label: str, summary: str, depth: int, frame: Frame, where: Rows) -> str:
    """A shaded frame with the cluster's name; it names its parent (`data-parent`), so the page folds a
    box by walking up from its innermost cluster, and carries what it holds, shown once folded."""
    top = where.top[frame.row] - where.heads[path] * HEAD
    bottom = where.top[_last(frame)] + BOX_HEIGHT + where.tails[path] * TAIL
    fill = "#f3f6fb" if depth % 2 else "#fbf7ef"
    names = f'data-path="{markup(path)}"' + (f' data-parent="{markup(parent)}"' if parent is not None else "")
    return (
        f'<g class="cluster" {names} data-rows="{frame.row} {_last(frame)}" data-fold="{frame.fold}">'
        f'<rect x="{frame.x}" y="{top}" width="{frame.width}" height="{bottom - top}" rx="8" fill="{fill}" stroke="#b8bcc8"/>'
        f'<text class="cluster-label" x="{frame.x + 8}" y="{top + 15}" fill="#555">{markup(label)}</text>'
        f'<text class="cluster-summary" x="{frame.x + 8}" y="{top + 36}" fill="#555" display="none">{markup(summary)}</text></g>'
    )


def box(name: str, title: str, lines: Sequence[str], op: str, scope: str | None, place: tuple[int, int], where: Rows) -> str:
    name_line, op_line, shape_line = (markup(text) for text in lines)
    row, x = place
    y = where.top[row]
    inner = f' data-scope="{markup(scope)}"' if scope is not None else ""
    fill = {"input": "#e6f4ea", "output": "#fde8e8", "parameter": "#fff4d6"}.get(op, "#ffffff")
    return (
        f'<g class="node" data-name="{markup(name)}"{inner} data-row="{row}"><title>{markup(title)}</title>'
        f'<rect x="{x}" y="{y}" width="{BOX_WIDTH}" height="{BOX_HEIGHT}" rx="6" fill="{fill}" stroke="#333"/>'
        f'<text x="{x + 8}" y="{y + 15}" font-weight="bold">{name_line}</text>'
        f'<text x="{x + 8}" y="{y + 30}" fill="#333">{op_line}</text>'
        f'<text x="{x + 8}" y="{y + 44}" fill="#666">{shape_line}</text></g>'
    )


def edge(
    source: str, target: str, skips: bool, runs: list[tuple[int, int, int]], places: Mapping[str, tuple[int, int]], where: Rows
) -> str:
    """From the middle of the source's bottom down the edge's lanes to the middle of the target's top;
    every bend between two rows lies in the gap between them, where no box is."""
    (row_a, x_a), (row_b, x_b) = places[source], places[target]
    path = route((x_a + BOX_WIDTH // 2, where.bottom[row_a]), runs, (x_b + BOX_WIDTH // 2, where.top[row_b]), where.top, where.bottom)
    style = f'stroke="{SKIP}" stroke-dasharray="{DASHES}"' if skips else f'stroke="{EDGE}"'
    lanes = f' data-runs="{" ".join(str(n) for run in runs for n in run)}"' if runs else ""
    return (
        f'<path class="edge{" skip" if skips else ""}" data-from="{markup(source)}" data-to="{markup(target)}"{lanes} d="{path}" '
        f'fill="none" {style} stroke-width="1.3" marker-end="url(#arrow)"/>'
    )


def route(start: tuple[int, int], runs: list[tuple[int, int, int]], end: tuple[int, int], top: Sequence[int], bottom: Sequence[int]) -> str:
    """An SVG path: straight down each lane (x, first row, last row), an S-bend between (the page's
    script draws paths with the same steps)."""
    x, y = start
    steps = [f"M {x} {y}"]
    for x2, y2 in [*((lane_x, where) for lane_x, first, last in runs for where in (top[first], bottom[last])), end]:
        middle = (y + y2) // 2
        steps.append(f"V {y2}" if x2 == x else f"C {x} {middle} {x2} {middle} {x2} {y2}")
        x, y = x2, y2
    return " ".join(steps)
