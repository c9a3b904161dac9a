"""Summary in the layout torchinfo users know: a tree of blocks and layers with output shape,
parameters, trainable or frozen, and multiply-accumulates (MACs); totals; memory at a batch size.

The tree follows the module tree (the dotted ids): a block call, group or repeat is a row whose numbers
sum its layers'; `depth` folds what lies deeper. Frozen means a learnable tensor declared
`trainable: false`, or a layer matched by the spec's `train.freeze` patterns. No torch here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .costs import DTYPE_BYTES, activation_bytes, default_point, output_bytes, train_memory
from .dims import at
from .ir import Kind, TypedGraph, TypedNode
from .layer_patterns import matches


@dataclass
class Row:
    """A layer, or a container of layers (a block call, group or repeat)."""

    name: str
    path: str
    kind: str
    depth: int
    node: TypedNode | None = None
    children: list[Row] = field(default_factory=list)
    last: TypedNode | None = None

    def nodes(self) -> list[TypedNode]:
        own = [self.node] if self.node is not None else []
        return own + [n for child in self.children for n in child.nodes()]

    @property
    def params(self) -> int:
        return sum(n.params for n in self.nodes())

    @property
    def macs(self) -> Any:
        return sum((n.macs for n in self.nodes()), 0)


def tree(graph: TypedGraph) -> list[Row]:
    """The top-level rows; each layer (call or learnable tensor) is a leaf under its dotted path."""
    kinds = _container_kinds(graph)
    top: list[Row] = []
    rows: dict[str, Row] = {}
    for name, node in graph.layers.items():
        parts = name.split(".")
        siblings = top
        for depth in range(1, len(parts)):
            path = ".".join(parts[:depth])
            if path not in rows:
                rows[path] = Row(parts[depth - 1], path, kinds.get(path, ""), depth)
                siblings.append(rows[path])
            rows[path].last = node
            siblings = rows[path].children
        op = "parameter" if node.kind is Kind.TENSOR else node.node.op
        siblings.append(Row(parts[-1], name, op, len(parts), node, last=node))
    for row in rows.values():
        if not row.kind:
            blocks = {kinds.get(child.path) for child in row.children}
            row.kind = f"{len(row.children)} × {blocks.pop()}" if len(blocks) == 1 and None not in blocks else "namespace"
    return top


def _container_kinds(graph: TypedGraph) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for node in graph.layers.values():
        for scope in node.node.scopes:
            kinds.setdefault(scope.path, scope.block or "group")
    return kinds


def frozen_layers(graph: TypedGraph, patterns: list[str]) -> set[str]:
    """Layers whose parameters do not train: tensors declared so, and layers `train.freeze` matches."""
    frozen = set()
    for name, node in graph.layers.items():
        if any(matches(name, pattern) for pattern in patterns) or (node.kind is Kind.TENSOR and not node.args.get("trainable", True)):
            frozen.add(name)
    return frozen


def _flatten(rows: list[Row], depth: int | None) -> list[Row]:
    found = []
    for row in rows:
        found.append(row)
        if depth is None or row.depth < depth:
            found += _flatten(row.children, depth)
    return found


def summary_rows(graph: TypedGraph) -> list[dict[str, Any]]:
    """One row per input, learnable tensor and op application, in graph order (the JSON `layers`)."""
    rows = []
    for name, node in graph.nodes.items():
        if node.kind is Kind.OUTPUT:
            continue
        op = {Kind.INPUT: "input", Kind.TENSOR: "parameter"}.get(node.kind, node.node.op)
        shapes = [[_size(s) for s in t.shape] for t in node.outputs]
        output = shapes[0] if len(shapes) == 1 else shapes
        rows.append(
            {"layer": name, "op": op, "output": output, "dtype": node.outputs[0].dtype, "params": node.params, "macs": _size(node.macs)}
        )
    return rows


def _size(value: Any) -> Any:
    return value if isinstance(value, int) else str(value)


@dataclass
class Summary:
    graph: TypedGraph
    frozen: set[str]
    depth: int | None = None
    batch: int = 1

    def table(self) -> list[dict[str, Any]]:
        """The tree's rows down to `depth`, as dicts (the JSON `tree`)."""
        table = []
        for row in _flatten(tree(self.graph), self.depth):
            nodes = row.nodes()
            trainable = [n for n in nodes if n.params]
            state = "—" if not trainable else "no" if all(n.name in self.frozen for n in trainable) else "yes"
            if trainable and state == "yes" and any(n.name in self.frozen for n in trainable):
                state = "partly"
            shapes = [[_size(s) for s in t.shape] for t in row.last.outputs] if row.last else []
            table.append(
                {
                    "name": row.path,
                    "label": row.name,
                    "type": row.kind,
                    "depth": row.depth,
                    "output": (shapes[0] if len(shapes) == 1 else shapes),
                    "batched": bool(row.last and row.last.outputs[0].batched),
                    "params": row.params,
                    "trainable": state,
                    "macs": _size(row.macs),
                }
            )
        return table

    def totals(self) -> dict[str, Any]:
        frozen = sum(n.params for name, n in self.graph.layers.items() if name in self.frozen)
        point = default_point(self.graph)
        inputs = sum(output_bytes(n, self.batch, point) for n in self.graph.nodes.values() if n.kind is Kind.INPUT)
        weights = self.graph.total_params * DTYPE_BYTES["float32"]
        forward = activation_bytes(self.graph, self.batch)
        step = train_memory(self.graph, self.batch).total
        return {
            "params": self.graph.total_params,
            "trainable_params": self.graph.total_params - frozen,
            "frozen_params": frozen,
            "macs": _size(self.graph.total_macs),
            "macs_at_defaults": int(at(self.graph.total_macs, point)),
            "batch": self.batch,
            "memory_bytes": {
                "inputs": inputs,
                "forward": forward,
                "params": weights,
                "total": inputs + forward + weights,
                "train_step": step,
            },
        }


def _shape_text(shape: Any, batched: bool = False) -> str:
    if shape and isinstance(shape[0], list):
        return " ".join(_shape_text(s, batched) for s in shape)
    return "[" + ", ".join(["B", *map(str, shape)] if batched else map(str, shape)) + "]"


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _mib(count: int) -> str:
    return f"{count / 2**20:,.2f}"


def summary_text(summary: Summary) -> str:
    """The torchinfo-style table, totals, memory, and one closing line."""
    graph = summary.graph
    rows = [
        (_label(r), _shape_text(r["output"], r["batched"]), _count(r["params"]), r["trainable"], _count(r["macs"])) for r in summary.table()
    ]
    header = ("Layer (type)", "Output shape", "Param #", "Trainable", "MACs")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(5)]
    rule = "=" * (sum(widths) + 8)

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if i in (0, 1, 3) else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    totals = summary.totals()
    memory = totals["memory_bytes"]
    lines = [rule, line(header), rule, *(line(row) for row in rows), rule]
    lines += [
        f"Total params: {totals['params']:,}",
        f"Trainable params: {totals['trainable_params']:,}",
        f"Non-trainable params: {totals['frozen_params']:,}",
        f"Total MACs: {_macs(graph)} per sample",
        rule,
        f"At batch {summary.batch} (float32 weights{'; symbolic sizes at their defaults' if graph.sizes else ''}):",
        f"Input size (MiB): {_mib(memory['inputs'])}",
        f"Forward pass size (MiB): {_mib(memory['forward'])}",
        f"Params size (MiB): {_mib(memory['params'])}",
        f"Estimated total size (MiB): {_mib(memory['total'])}",
        f"One training step with AdamW (MiB): {_mib(memory['train_step'])} (weights, gradients, optimizer state, activations)",
        rule,
    ]
    shapes = ", ".join(f"{name} {_shape_text([_size(s) for s in t.shape])}" for name, t in graph.inputs.items())
    lines.append(f"{graph.name}: {graph.total_params:,} parameters, {_macs(graph)} per sample ({shapes})")
    return "\n".join(lines)


def _label(row: dict[str, Any]) -> str:
    indent = "│ " * (row["depth"] - 1)
    return f"{indent}├─{row['label']} ({row['type']})"


def summary_markdown(summary: Summary) -> str:
    """The same table as Markdown (for a pull request or a model card)."""
    lines = ["| Layer | Type | Output shape | Param # | Trainable | MACs |", "|---|---|---|--:|---|--:|"]
    for r in summary.table():
        name = "&nbsp;&nbsp;" * (r["depth"] - 1) + f"`{r['label']}`"
        shape = _shape_text(r["output"], r["batched"])
        lines.append(f"| {name} | {r['type']} | `{shape}` | {_count(r['params'])} | {r['trainable']} | {_count(r['macs'])} |")
    totals = summary.totals()
    lines += [
        "",
        f"**{summary.graph.name}**: {totals['params']:,} parameters ({totals['trainable_params']:,} trainable), "
        f"{_macs(summary.graph)} per sample; about {_mib(totals['memory_bytes']['total'])} MiB for inference at batch {summary.batch}.",
    ]
    return "\n".join(lines) + "\n"


def summary_json(summary: Summary) -> str:
    graph = summary.graph
    report = {"name": graph.name, "params": graph.total_params, "macs": _size(graph.total_macs), "layers": summary_rows(graph)}
    report |= {"tree": summary.table(), "totals": summary.totals()}
    return json.dumps(report, indent=2)


def _macs(graph: TypedGraph) -> str:
    """`1.814 GMACs`; with symbolic sizes, the formula and its value at the sizes' defaults."""
    total = graph.total_macs
    if isinstance(total, int):
        return f"{_metric(total)}MACs"
    point = {name: size.example for name, size in graph.sizes.items()}
    where = ", ".join(f"{name}={value}" for name, value in point.items())
    return f"{total} MACs, {_metric(total.at(point))}MACs at {where} (choose with --set)"


def _metric(count: Any) -> str:
    """1814073344 → '1.814 G'; torchvision's model docs quote GMACs to three decimals."""
    if not isinstance(count, int):
        return f"{count} "
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if count >= scale:
            return f"{count / scale:.3f} {prefix}"
    return f"{count} "
