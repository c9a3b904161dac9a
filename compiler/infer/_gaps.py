"""W0401: a layer skipped by a condition that reads shapes keeps its position, so the unnamed layers
after it are numbered as if it were there."""

from __future__ import annotations

from ..diagnostics import Diagnostic, Severity
from ..ir import Kind, TypedNode
from ..ops import Call
from ._context import Context


def warn_gaps(ctx: Context) -> None:
    """W0401 where a skipped layer kept its position and a later position of its list holds tensors
    (whose state_dict keys the gap renumbers)."""
    if not ctx.gaps:
        return
    last: dict[str, int] = {}
    for node in ctx.typed.values():
        if _holds_state(ctx, node):
            for prefix, position in node.node.numbered:
                last[prefix] = max(last.get(prefix, -1), position)
    for span, (prefix, position) in ctx.gaps.items():
        if last.get(prefix, -1) > position:
            message = (
                f"position '{prefix}{position}' is skipped by a condition that reads shapes, and keeps its number: the "
                "unnamed layers after it are numbered as if it were there"
            )
            hint = "a conditional `append` in PyTorch numbers on without it: decide the condition from parameters, or give ids"
            ctx.diagnostics.append(Diagnostic("W0401", message, span, hint, Severity.WARNING))


def _holds_state(ctx: Context, node: TypedNode) -> bool:
    """True if the node has tensors in the state_dict."""
    if node.kind is Kind.TENSOR:
        return True
    if node.kind is not Kind.CALL:
        return False
    op = ctx.registry.get(node.node.op)
    return op.float32_state(Call(node.args, node.input_types)) if op.float32_state is not None else node.params > 0
