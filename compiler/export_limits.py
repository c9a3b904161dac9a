"""E0409: the layers of a typed graph that would not export to a target, by the `export_limits` each
op declares (`compiler.targets`); `check --target` and `build` report them before any export."""

from __future__ import annotations

from .diagnostics import Diagnostic
from .ir import TypedGraph
from .ops import BUILTIN, Call, Registry
from .targets import ExportTarget


def export_limits(graph: TypedGraph, target: ExportTarget | str, registry: Registry | None = None) -> list[Diagnostic]:
    """E0409 for every layer of `graph` that would not export to `target`, by the limits its op
    declares in `registry` (default: the builtin ops; pass the analysis's registry for plugin ops')."""
    target = ExportTarget(target)
    found = []
    for node in graph.layers.values():
        op = (registry or BUILTIN).get(node.node.op)
        for limit in (op.export_limits or ()) if op is not None else ():
            if limit.target is target and limit.applies(Call(node.args, node.input_types)):
                message = f"layer '{node.name}' ({node.node.op}) would not export to {target.described}: {limit.reason}"
                found.append(Diagnostic("E0409", message, node.node.span))
    return found
