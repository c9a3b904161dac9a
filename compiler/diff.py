"""Diff: what changes between two checked specs, layer by layer (op, output shapes, parameters, MACs),
and in total, for pull-request review. Pure Python."""

from __future__ import annotations

from typing import Any

from .ir import TypedGraph
from .summary import summary_rows

_COMPARED = ("op", "output", "dtype", "params", "macs")


def diff(old: TypedGraph, new: TypedGraph) -> dict[str, Any]:
    """Layers removed, added and changed (in the new spec's order, removed ones where they were), and
    the totals before and after."""
    before = {row["layer"]: row for row in summary_rows(old)}
    after = {row["layer"]: row for row in summary_rows(new)}
    layers = []
    for name in _merged_order(list(before), list(after)):
        was, now = before.get(name), after.get(name)
        if was is None or now is None:
            status = "added" if was is None else "removed"
        elif any(was[key] != now[key] for key in _COMPARED):
            status = "changed"
        else:
            continue
        layers.append({"layer": name, "status": status, "old": _entry(was), "new": _entry(now)})
    totals = {
        "params": {"old": old.total_params, "new": new.total_params},
        "macs": {"old": _json(old.total_macs), "new": _json(new.total_macs)},
    }
    return {"old": old.name, "new": new.name, "layers": layers, "totals": totals}


def _entry(row: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if row is None else {key: row[key] for key in _COMPARED}


def _json(value: Any) -> Any:
    return value if isinstance(value, int) else str(value)


def _merged_order(first: list[str], second: list[str]) -> list[str]:
    """Names of `second` in order, with those only in `first` inserted after their predecessor."""
    order = list(second)
    seen = set(second)
    previous_index = -1
    for name in first:
        if name in seen:
            previous_index = order.index(name)
            continue
        previous_index += 1
        order.insert(previous_index, name)
        seen.add(name)
    return order


def diff_text(result: dict[str, Any]) -> str:
    """A table of the changed layers and a line of totals."""
    rows = [("layer", "change", "op", "output", "params", "MACs")]
    for layer in result["layers"]:
        old, new = layer["old"] or {}, layer["new"] or {}
        rows.append(
            (
                layer["layer"],
                layer["status"],
                _pair(old.get("op"), new.get("op")),
                _pair(_shape(old.get("output")), _shape(new.get("output"))),
                _pair(_count(old.get("params")), _count(new.get("params"))),
                _pair(_count(old.get("macs")), _count(new.get("macs"))),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows] if len(rows) > 1 else []
    if lines:
        lines.insert(1, "  ".join("-" * w for w in widths))
    else:
        lines.append("no layer changed")
    totals = result["totals"]
    lines.append("")
    lines.append(f"params: {_total(totals['params'])}; MACs per sample: {_total(totals['macs'])}")
    return "\n".join(lines)


def _pair(old: Any, new: Any) -> str:
    if old is None:
        return f"{new}"
    if new is None:
        return f"{old}"
    return f"{old}" if old == new else f"{old} → {new}"


def _shape(value: Any) -> str | None:
    if value is None:
        return None
    if value and isinstance(value[0], list):
        return " ".join(_shape(v) for v in value)
    return "[" + ", ".join(str(s) for s in value) + "]"


def _count(value: Any) -> str | None:
    return None if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def _total(pair: dict[str, Any]) -> str:
    old, new = pair["old"], pair["new"]
    if not (isinstance(old, int) and isinstance(new, int)):
        return f"{old} → {new}"
    change = new - old
    percent = f", {change / old:+.2%}" if old else ""
    return f"{old:,} → {new:,} ({change:+,}{percent})"
