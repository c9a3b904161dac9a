"""Pictures of a typed graph: Graphviz DOT, Mermaid, a self-made SVG (no system binary) and an HTML page
around that SVG with pan, zoom, an overview, blocks that fold into one box and a click that shows a
node's spec line. No torch.

Nodes show id, op, output shape (symbolic where sizes are) and parameters; block instances and groups
are clusters; an edge that skips over layers (a residual shortcut, a concat of an early value) is drawn
dashed and coloured. Where things go is compiler/picture_layout.py's, the SVG's pieces are
compiler/picture_svg.py's and the page's script is in compiler/picture_page.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import picture_svg as svg
from .diagnostics import printable
from .ir import OUTPUT, Kind, TypedGraph
from .picture_layout import Layout, lay_out
from .picture_page import PAGE, READABLE
from .picture_svg import SKIP, markup


@dataclass
class Box:
    name: str
    op: str
    shape: str
    params: int
    line: int | None
    scopes: tuple[str, ...]


@dataclass
class Picture:
    title: str
    boxes: dict[str, Box]
    edges: list[tuple[str, str, bool]]
    """(from, to, skips): skips when the edge jumps over rows (it runs down a lane beside them)."""
    clusters: dict[str, str] = field(default_factory=dict)
    """Scope path → label (`layer1.0: basic`), outer scopes first."""
    layout: Layout = field(init=False)
    """Where everything goes (compiler/picture_layout.py), worked out from the rest."""

    def __post_init__(self) -> None:
        self.layout = lay_out(self.boxes, self.edges, self.clusters)


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
    pic = Picture(graph.name, boxes, edges, clusters)
    pic.edges = [(a, b, bool(runs)) for (a, b, _), runs in zip(edges, pic.layout.runs)]  # an edge down a lane skips rows
    return pic


def _shape(t: Any) -> str:
    dims = [str(s) for s in t.shape]
    return "[" + ", ".join(["B", *dims] if t.batched else dims) + "]"


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


def _mermaid_text(text: str) -> str:
    """Text inside a quoted Mermaid label: markup escaped, and no backtick to start a Markdown string."""
    return markup(text).replace("`", "#96;")


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
    layout, nesting = pic.layout, _nesting(pic)
    where = svg.rows(layout, nesting.parents)
    summaries = _summaries(pic)
    parts = svg.head(pic.title, layout.width, where.height)
    for path, label in pic.clusters.items():
        parts.append(svg.cluster(path, nesting.parents.get(path), label, summaries[path], nesting.depth[path], layout.frames[path], where))
    for (a, b, skips), runs in zip(pic.edges, layout.runs):
        parts.append(svg.edge(a, b, skips, runs, layout.places, where))
    for name, box in pic.boxes.items():
        parts.append(svg.box(name, box.name, _label(box), box.op, box.scopes[-1] if box.scopes else None, layout.places[name], where))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _summaries(pic: Picture) -> dict[str, str]:
    """Cluster → what it holds (`7 layers · 74,112 params`), shown on its box once folded."""
    counts = dict.fromkeys(pic.clusters, (0, 0))
    for box in pic.boxes.values():
        for scope in box.scopes:
            layers, params = counts[scope]
            counts[scope] = (layers + 1, params + box.params)
    return {path: f"{layers:,} layers" + (f" · {params:,} params" if params else "") for path, (layers, params) in counts.items()}


def to_html(pic: Picture, source: str, file: str) -> str:
    """A page with the SVG, opened at a readable zoom on the input beside an overview: drag to pan,
    wheel to zoom, click a node for its spec line, click a block's name to fold it into one box."""
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
    page = {**svg.metrics(pic.layout), "readable": READABLE}
    values = {"title": markup(pic.title), "svg": to_svg(pic), "data": _script_json(details), "metrics": _script_json(page)}
    return re.sub(r"\{\{(title|svg|data|metrics)\}\}", lambda match: values[match.group(1)], PAGE)  # one pass: no value is read as a slot


WRITERS = {".dot": "dot", ".gv": "dot", ".mmd": "mermaid", ".svg": "svg", ".html": "html"}
