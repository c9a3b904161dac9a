"""Pictures of a typed graph: Graphviz DOT, Mermaid, a self-made SVG (no system binary) and an HTML page
around that SVG with pan, zoom, collapsible blocks and a click that shows a node's spec line. No torch.

Nodes show id, op, output shape (symbolic where sizes are) and parameters; block instances and groups
are clusters; an edge that skips over layers (a residual shortcut, a concat of an early value) is drawn
dashed and coloured.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .diagnostics import printable
from .ir import OUTPUT, Kind, TypedGraph

BOX_WIDTH, BOX_HEIGHT, COLUMN_GAP, ROW_GAP, MARGIN = 190, 50, 30, 42, 40
SKIP = "#d62728"


@dataclass
class Box:
    name: str
    op: str
    shape: str
    params: int
    line: int | None
    scopes: tuple[str, ...]
    rank: int = 0
    x: float = 0.0
    y: float = 0.0


@dataclass
class Picture:
    title: str
    boxes: dict[str, Box]
    edges: list[tuple[str, str, bool]]
    """(from, to, skips): skips when the edge jumps over layers."""
    clusters: dict[str, str] = field(default_factory=dict)
    """Scope path → label (`layer1.0: basic`), outer scopes first."""


def picture(graph: TypedGraph) -> Picture:
    boxes: dict[str, Box] = {}
    clusters: dict[str, str] = {}
    for name, node in graph.nodes.items():
        op = {Kind.INPUT: "input", Kind.TENSOR: "parameter", Kind.OUTPUT: "output"}.get(node.kind, node.node.op)
        shapes = [_shape(t) for t in node.outputs] or [", ".join(graph.output.args["names"])]
        scopes = tuple(scope.path for scope in node.node.scopes)
        parent = ""
        for scope in node.node.scopes:
            short = scope.path[len(parent) + 1 :] if parent and scope.path.startswith(parent + ".") else scope.path
            clusters.setdefault(scope.path, f"{short}: {scope.block}" if scope.block else short)
            parent = scope.path
        line = node.node.span.line if node.node.span else None
        boxes[name] = Box("output" if name == OUTPUT else name, op, " ".join(shapes), node.params, line, scopes)
    edges = [(ref.node, name, False) for name, node in graph.nodes.items() for ref in dict.fromkeys(node.inputs)]
    _layout(boxes, edges)
    edges = [(a, b, boxes[b].rank - boxes[a].rank > 1) for a, b, _ in edges]
    return Picture(graph.name, boxes, edges, clusters)


def _shape(t: Any) -> str:
    dims = [str(s) for s in t.shape]
    return "[" + ", ".join(["B", *dims] if t.batched else dims) + "]"


def _layout(boxes: dict[str, Box], edges: list[tuple[str, str, bool]]) -> None:
    """Layered: a node's row is its longest path from an input; a learnable tensor sits just above
    its first reader (an unread one beside the node before it), not beside the inputs; rows centred."""
    for a, b, _ in edges:  # edges come in topological order of their targets
        boxes[b].rank = max(boxes[b].rank, boxes[a].rank + 1)
    readers: dict[str, list[int]] = {}
    for a, b, _ in edges:
        readers.setdefault(a, []).append(boxes[b].rank)
    previous = 0
    for name, box in boxes.items():
        if box.op == "parameter":
            box.rank = max(0, min(readers[name]) - 1) if name in readers else previous
        previous = box.rank
    rows: dict[int, list[Box]] = {}
    for box in boxes.values():
        rows.setdefault(box.rank, []).append(box)
    widest = max(len(row) for row in rows.values())
    for rank, row in rows.items():
        offset = (widest - len(row)) * (BOX_WIDTH + COLUMN_GAP) / 2
        for column, box in enumerate(row):
            box.x = MARGIN + offset + column * (BOX_WIDTH + COLUMN_GAP)
            box.y = MARGIN + rank * (BOX_HEIGHT + ROW_GAP)


def _label(box: Box) -> list[str]:
    """Id (relative to the block or group drawn around it), op and parameters, output shape."""
    params = f" · {box.params:,} params" if box.params else ""
    inner = box.scopes[-1] if box.scopes else ""
    name = box.name[len(inner) + 1 :] if inner and box.name.startswith(inner + ".") else box.name
    return [name, f"{box.op}{params}", box.shape]


# -- nesting --------------------------------------------------------------------------------------


@dataclass
class _Nesting:
    """What each cluster holds, found in one pass over the boxes' scopes (None: the top level)."""

    boxes: dict[str | None, list[str]]
    """Cluster → the boxes directly inside it."""
    clusters: dict[str | None, list[str]]
    """Cluster → the clusters directly inside it, in the picture's order."""
    parents: dict[str, str | None]
    """Cluster → the cluster it lies directly in."""
    depth: dict[str, int]
    """Cluster → how many clusters it lies in, itself included."""


def _nesting(pic: Picture) -> _Nesting:
    boxes: dict[str | None, list[str]] = {}
    parents: dict[str, str | None] = {}
    depth: dict[str, int] = {}
    for name, box in pic.boxes.items():
        boxes.setdefault(box.scopes[-1] if box.scopes else None, []).append(name)
        for level, scope in enumerate(box.scopes):
            parents.setdefault(scope, box.scopes[level - 1] if level else None)
            depth.setdefault(scope, level + 1)
    clusters: dict[str | None, list[str]] = {}
    for path in pic.clusters:
        clusters.setdefault(parents.get(path), []).append(path)
    return _Nesting(boxes, clusters, parents, depth)


def _nested_lines(pic: Picture, box_line: Callable[[str, Box], str], opening: Callable[[str], list[str]], closing: str) -> list[str]:
    """The boxes and clusters as nested text: a cluster's opening lines, its boxes, its clusters, its
    closing line, each level indented by two more spaces. Walked with a stack, not recursion: clusters
    nest as deep as the spec's blocks and groups do; each box and cluster is visited once."""
    nesting = _nesting(pic)
    lines: list[str] = []
    stack: list[tuple[str | None, str, bool]] = [(None, "  ", False)]
    while stack:
        path, indent, done = stack.pop()
        if done:
            lines.append(indent + closing)
            continue
        inner = indent
        if path is not None:
            lines += [indent + line for line in opening(path)]
            inner = indent + "  "
            stack.append((path, indent, True))
        lines += [inner + box_line(name, pic.boxes[name]) for name in nesting.boxes.get(path, [])]
        stack += [(child, inner, False) for child in reversed(nesting.clusters.get(path, []))]
    return lines


# -- escaping: spec text (a file name, a source line) never becomes markup, script or syntax -----------


def _dot_string(text: str) -> str:
    """A quoted DOT string (`"` and `\\` escaped, control characters shown as escapes)."""
    return json.dumps(printable(text))


def _markup(text: str) -> str:
    """Text for SVG or HTML, as text or a quoted attribute value."""
    return html.escape(printable(text), quote=True)


def _mermaid_text(text: str) -> str:
    """Text inside a quoted Mermaid label: markup escaped, and no backtick to start a Markdown string."""
    return _markup(text).replace("`", "#96;")


def _script_json(data: Any) -> str:
    """JSON to embed in a `<script>` element: `<`, `>` and `&` as `\\u003c`… (so `</script>` and `<!--` in
    a spec's line cannot end or alter the element), and every non-ASCII character escaped."""
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# -- DOT and Mermaid -----------------------------------------------------------------------------


def to_dot(pic: Picture) -> str:
    def node(name: str, box: Box) -> str:
        label = "\\n".join(_dot_string(part)[1:-1] for part in _label(box))
        return f'{_dot_string(name)} [label="{label}"];'

    def cluster(path: str) -> list[str]:
        return [f"subgraph {_dot_string('cluster_' + path)} {{", f"  label={_dot_string(pic.clusters[path])}; style=rounded; color=gray;"]

    lines = [f"digraph {_dot_string(pic.title)} {{", "  node [shape=box, style=rounded, fontname=Helvetica];"]
    lines += _nested_lines(pic, node, cluster, "}")
    for a, b, skips in pic.edges:
        style = f' [style=dashed, color="{SKIP}"]' if skips else ""
        lines.append(f"  {_dot_string(a)} -> {_dot_string(b)}{style};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(pic: Picture) -> str:
    ids = {name: f"n{i}" for i, name in enumerate(pic.boxes)}
    clusters = {path: f"c{i}" for i, path in enumerate(pic.clusters)}

    def node(name: str, box: Box) -> str:
        return f'{ids[name]}["{"<br/>".join(_mermaid_text(part) for part in _label(box))}"]'

    def cluster(path: str) -> list[str]:
        return [f'subgraph {clusters[path]}["{_mermaid_text(pic.clusters[path])}"]']

    lines = ["flowchart TD", *_nested_lines(pic, node, cluster, "end")]
    for a, b, skips in pic.edges:
        lines.append(f"  {ids[a]} {'-.->' if skips else '-->'} {ids[b]}")
    return "\n".join(lines) + "\n"


# -- SVG and HTML --------------------------------------------------------------------------------


def to_svg(pic: Picture) -> str:
    width = max(b.x for b in pic.boxes.values()) + BOX_WIDTH + 2 * MARGIN
    height = max(b.y for b in pic.boxes.values()) + BOX_HEIGHT + 2 * MARGIN
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        'font-family="Helvetica, Arial, sans-serif" font-size="12">',
        f"<title>{_markup(pic.title)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
        '<rect width="100%" height="100%" fill="white"/>',
    ]
    parts += _svg_clusters(pic)
    for a, b, skips in pic.edges:
        parts.append(_svg_edge(pic.boxes[a], pic.boxes[b], skips, a, b))
    for name, box in pic.boxes.items():
        parts.append(_svg_box(name, box))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _svg_clusters(pic: Picture) -> list[str]:
    """A shaded rectangle per cluster around the boxes inside it, padded by how deep they nest; each
    cluster names its parent (`data-parent`), so the page folds a box by walking up from its innermost."""
    nesting = _nesting(pic)
    extents = _extents(pic, nesting)
    parts = []
    for path, label in pic.clusters.items():
        depth = nesting.depth[path]
        left, top, right, bottom, deepest = extents[path]
        pad = 6 + 8 * (deepest - depth)
        left, top, right, bottom = left - pad, top - pad - 14, right + pad, bottom + pad
        fill = "#f3f6fb" if depth % 2 else "#fbf7ef"
        parent = nesting.parents.get(path)
        where = f'data-path="{_markup(path)}"' + (f' data-parent="{_markup(parent)}"' if parent is not None else "")
        parts.append(
            f'<g class="cluster" {where}><rect x="{left:.0f}" y="{top:.0f}" width="{right - left:.0f}" '
            f'height="{bottom - top:.0f}" rx="8" fill="{fill}" stroke="#b8bcc8"/>'
            f'<text class="cluster-label" x="{left + 8:.0f}" y="{top + 12:.0f}" fill="#555">{_markup(label)}</text></g>'
        )
    return parts


def _extents(pic: Picture, nesting: _Nesting) -> dict[str, tuple[float, float, float, float, int]]:
    """Cluster → (left, top, right, bottom, deepest nesting) of the boxes inside it at any depth: each box
    widens its innermost cluster, then each cluster its parent, inner ones first (a parent always
    comes before its clusters in the picture's order): one pass, however deep they nest."""
    extents: dict[str, tuple[float, float, float, float, int]] = {}

    def widen(path: str, extent: tuple[float, float, float, float, int]) -> None:
        old = extents.get(path, extent)
        extents[path] = (*map(min, old[:2], extent[:2]), *map(max, old[2:], extent[2:]))

    for box in pic.boxes.values():
        if box.scopes:
            widen(box.scopes[-1], (box.x, box.y, box.x + BOX_WIDTH, box.y + BOX_HEIGHT, len(box.scopes)))
    for path in reversed(pic.clusters):
        parent = nesting.parents.get(path)
        if parent is not None and path in extents:
            widen(parent, extents[path])
    return extents


def _svg_edge(a: Box, b: Box, skips: bool, source: str, target: str) -> str:
    x1, y1 = a.x + BOX_WIDTH / 2, a.y + BOX_HEIGHT
    x2, y2 = b.x + BOX_WIDTH / 2, b.y
    bend = BOX_WIDTH * 0.75 if skips else 0
    path = f"M {x1:.0f} {y1:.0f} C {x1 + bend:.0f} {y1 + ROW_GAP:.0f} {x2 + bend:.0f} {y2 - ROW_GAP:.0f} {x2:.0f} {y2:.0f}"
    style = f'stroke="{SKIP}" stroke-dasharray="5 3"' if skips else 'stroke="#555"'
    kind = "edge skip" if skips else "edge"
    return (
        f'<path class="{kind}" data-from="{_markup(source)}" data-to="{_markup(target)}" d="{path}" fill="none" '
        f'{style} stroke-width="1.3" marker-end="url(#arrow)"/>'
    )


def _svg_box(name: str, box: Box) -> str:
    name_line, op_line, shape_line = (_markup(text) for text in _label(box))
    x, y = box.x, box.y
    scope = f' data-scope="{_markup(box.scopes[-1])}"' if box.scopes else ""
    fill = {"input": "#e6f4ea", "output": "#fde8e8", "parameter": "#fff4d6"}.get(box.op, "#ffffff")
    return (
        f'<g class="node" data-name="{_markup(name)}"{scope}><title>{_markup(box.name)}</title>'
        f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_WIDTH}" height="{BOX_HEIGHT}" rx="6" fill="{fill}" stroke="#333"/>'
        f'<text x="{x + 8:.0f}" y="{y + 15:.0f}" font-weight="bold">{name_line}</text>'
        f'<text x="{x + 8:.0f}" y="{y + 30:.0f}" fill="#333">{op_line}</text>'
        f'<text x="{x + 8:.0f}" y="{y + 44:.0f}" fill="#666">{shape_line}</text></g>'
    )


def to_html(pic: Picture, source: str, file: str) -> str:
    """A page with the SVG: drag to pan, wheel to zoom, click a node for its spec line, click a block's
    name to fold it."""
    lines = source.splitlines()
    details = {
        name: {
            "op": box.op,
            "shape": box.shape,
            "params": box.params,
            "where": f"{file}:{box.line}" if box.line else "",
            "text": lines[box.line - 1].strip() if box.line and box.line <= len(lines) else "",
        }
        for name, box in pic.boxes.items()
    }
    values = {"title": _markup(pic.title), "svg": to_svg(pic), "data": _script_json(details)}
    return re.sub(r"\{\{(title|svg|data)\}\}", lambda match: values[match.group(1)], _PAGE)  # one pass: no value is read as a slot


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{title}}</title>
<style>
  body { margin: 0; font-family: Helvetica, Arial, sans-serif; display: flex; height: 100vh; }
  #view { flex: 1; overflow: hidden; cursor: grab; background: #fff; }
  #view svg { width: 100%; height: 100%; }
  #panel { width: 320px; border-left: 1px solid #ccc; padding: 12px; overflow: auto; font-size: 13px; }
  #panel pre { white-space: pre-wrap; background: #f5f5f5; padding: 6px; }
  .node { cursor: pointer; }
  .node.selected rect { stroke: #1a73e8; stroke-width: 3; }
  .cluster-label { cursor: pointer; text-decoration: underline dotted; }
  .hidden { display: none; }
  .cluster.folded rect { fill: #e4e4e4; }
</style>
</head>
<body>
<div id="view">{{svg}}</div>
<div id="panel"><h3>{{title}}</h3><p>Drag to pan, wheel to zoom. Click a node for its spec line; click a block's name to fold it.</p>
<div id="details"></div></div>
<script>
"use strict";
const details = {{data}};
const svg = document.querySelector("#view svg");
const box = svg.viewBox.baseVal;
let view = { x: box.x, y: box.y, w: box.width, h: box.height };
function apply() { svg.setAttribute("viewBox", `${view.x} ${view.y} ${view.w} ${view.h}`); }
svg.addEventListener("wheel", (event) => {
  event.preventDefault();
  const scale = event.deltaY > 0 ? 1.15 : 1 / 1.15;
  const rect = svg.getBoundingClientRect();
  const px = view.x + (event.clientX - rect.left) / rect.width * view.w;
  const py = view.y + (event.clientY - rect.top) / rect.height * view.h;
  view = { x: px - (px - view.x) * scale, y: py - (py - view.y) * scale, w: view.w * scale, h: view.h * scale };
  apply();
}, { passive: false });
let drag = null;
svg.addEventListener("mousedown", (event) => { drag = { x: event.clientX, y: event.clientY, view: { ...view } }; });
window.addEventListener("mouseup", () => { drag = null; });
window.addEventListener("mousemove", (event) => {
  if (!drag) return;
  const rect = svg.getBoundingClientRect();
  view.x = drag.view.x - (event.clientX - drag.x) / rect.width * view.w;
  view.y = drag.view.y - (event.clientY - drag.y) / rect.height * view.h;
  apply();
});
function show(name) {
  const d = details[name];
  document.querySelectorAll(".node.selected").forEach((n) => n.classList.remove("selected"));
  document.querySelector(`.node[data-name="${CSS.escape(name)}"]`).classList.add("selected");
  const panel = document.getElementById("details");
  panel.replaceChildren();
  const add = (tag, text) => { const e = document.createElement(tag); e.textContent = text; panel.appendChild(e); };
  add("h4", name);
  add("div", `op: ${d.op}`);
  add("div", `output: ${d.shape}`);
  add("div", `parameters: ${d.params.toLocaleString()}`);
  if (d.where) { add("div", d.where); add("pre", d.text); }
}
document.querySelectorAll(".node").forEach((node) => node.addEventListener("click", () => show(node.dataset.name)));
const folded = new Set();
const parents = new Map();
document.querySelectorAll(".cluster").forEach((c) => parents.set(c.dataset.path, c.dataset.parent));
function isFolded(scope) {
  for (let s = scope; s !== undefined; s = parents.get(s)) if (folded.has(s)) return true;
  return false;
}
function refold() {
  const hidden = new Set();
  document.querySelectorAll(".node").forEach((node) => {
    const inside = isFolded(node.dataset.scope);
    node.classList.toggle("hidden", inside);
    if (inside) hidden.add(node.dataset.name);
  });
  document.querySelectorAll(".edge").forEach((edge) => {
    edge.classList.toggle("hidden", hidden.has(edge.dataset.from) && hidden.has(edge.dataset.to));
  });
  document.querySelectorAll(".cluster").forEach((c) => c.classList.toggle("folded", folded.has(c.dataset.path)));
}
document.querySelectorAll(".cluster-label").forEach((label) => label.addEventListener("click", () => {
  const path = label.parentNode.dataset.path;
  if (folded.has(path)) folded.delete(path); else folded.add(path);
  refold();
}));
document.body.dataset.nodes = String(document.querySelectorAll(".node").length);
document.body.dataset.ready = "yes";
</script>
</body>
</html>
"""

WRITERS = {".dot": "dot", ".gv": "dot", ".mmd": "mermaid", ".svg": "svg", ".html": "html"}
