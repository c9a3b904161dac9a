"""Summary: a per-layer table of output shapes, parameters and multiply-accumulates (MACs)."""

from __future__ import annotations

from typing import Any

from .infer import TypedGraph


def summary_rows(graph: TypedGraph) -> list[dict[str, Any]]:
    rows = [
        {"layer": name, "op": "input", "output": list(t.shape), "dtype": t.dtype, "params": 0, "macs": 0}
        for name, t in graph.inputs.items()
    ]
    for name, node in graph.nodes.items():
        op = node.node.op + (f"+{node.node.activation}" if node.node.activation else "")
        rows.append(
            {
                "layer": name,
                "op": op,
                "output": list(node.output.shape),
                "dtype": node.output.dtype,
                "params": node.params,
                "macs": node.macs,
            }
        )
    return rows


def summary_text(graph: TypedGraph) -> str:
    """A fixed-width table and totals, as `nncompile summary` prints it."""
    rows = summary_rows(graph)
    table = [("layer", "op", "output", "params", "MACs")]
    table += [(r["layer"], r["op"], str(r["output"]), f"{r['params']:,}", f"{r['macs']:,}") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    lines = []
    for i, row in enumerate(table):
        cells = [cell.ljust(w) if c < 3 else cell.rjust(w) for c, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    shapes = ", ".join(f"{name} {list(t.shape)}" for name, t in graph.inputs.items())
    lines.append("")
    lines.append(f"{graph.name}: {graph.total_params:,} parameters, {_metric(graph.total_macs)}MACs per sample ({shapes})")
    return "\n".join(lines)


def _metric(count: int) -> str:
    """1814073344 → '1.814 G'; torchvision's model docs quote GMACs to three decimals."""
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if count >= scale:
            return f"{count / scale:.3f} {prefix}"
    return f"{count} "
