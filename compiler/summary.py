"""Summary: a per-layer table of output shapes, parameters and multiply-accumulates (MACs)."""

from __future__ import annotations

from typing import Any

from .ir import Kind, TypedGraph


def summary_rows(graph: TypedGraph) -> list[dict[str, Any]]:
    """One row per input, learnable tensor and op application, in graph order."""
    rows = []
    for name, node in graph.nodes.items():
        if node.kind is Kind.OUTPUT:
            continue
        op = {Kind.INPUT: "input", Kind.TENSOR: "parameter"}.get(node.kind, node.node.op)
        shapes = [[_size(s) for s in t.shape] for t in node.outputs]
        rows.append(
            {
                "layer": name,
                "op": op,
                "output": shapes[0] if len(shapes) == 1 else shapes,
                "dtype": node.outputs[0].dtype,
                "params": node.params,
                "macs": _size(node.macs),
            }
        )
    return rows


def _size(value: Any) -> Any:
    return value if isinstance(value, int) else str(value)


def summary_text(graph: TypedGraph) -> str:
    """A fixed-width table and totals, as `nncompile summary` prints it."""
    rows = summary_rows(graph)
    table = [("layer", "op", "output", "params", "MACs")]
    table += [(r["layer"], r["op"], _shape_text(r["output"]), f"{r['params']:,}", _count(r["macs"])) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    lines = []
    for i, row in enumerate(table):
        cells = [cell.ljust(w) if c < 3 else cell.rjust(w) for c, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    shapes = ", ".join(f"{name} {_shape_text([_size(s) for s in t.shape])}" for name, t in graph.inputs.items())
    lines.append("")
    lines.append(f"{graph.name}: {graph.total_params:,} parameters, {_macs(graph)} per sample ({shapes})")
    return "\n".join(lines)


def _macs(graph: TypedGraph) -> str:
    """`1.814 GMACs`; with symbolic sizes, the formula and its value at the sizes' defaults."""
    total = graph.total_macs
    if isinstance(total, int):
        return f"{_metric(total)}MACs"
    point = {name: size.example for name, size in graph.sizes.items()}
    where = ", ".join(f"{name}={value}" for name, value in point.items())
    return f"{total} MACs, {_metric(total.at(point))}MACs at {where} (choose with --set)"


def _shape_text(shape: list) -> str:
    if shape and isinstance(shape[0], list):
        return " ".join(_shape_text(s) for s in shape)
    return "[" + ", ".join(str(s) for s in shape) + "]"


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _metric(count: Any) -> str:
    """1814073344 → '1.814 G'; torchvision's model docs quote GMACs to three decimals."""
    if not isinstance(count, int):
        return f"{count} "
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if count >= scale:
            return f"{count / scale:.3f} {prefix}"
    return f"{count} "
