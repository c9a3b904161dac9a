"""An op's use becomes a pending node (a learnable tensor, or a call with its arguments and inputs as
written), and `activation:` a second node after it."""

from __future__ import annotations

from ..diagnostics import did_you_mean
from ..ir import Kind, Node, Ref
from ..link import PendingNode, Source
from ..ops import OpDef, plugin_failure
from ..values import INVALID
from ._arguments import op_args
from ._context import MAX_NODES, Abort, Context, Frame, Use, Written
from ._expressions import resolved


def add_node(ctx: Context, use: Use, frame: Frame, name: str) -> None:
    """The node of an op's use at `name` (and of its activation)."""
    op: OpDef = use.callee
    written, sources = use.written, use.sources
    args, spans = op_args(ctx, use, frame, name)
    kind = Kind.TENSOR if op.makes_tensor else Kind.CALL
    if kind is Kind.TENSOR:
        if "from" in written.layer:
            message = f"layer '{name}' ({op.name}): a learnable tensor takes no input"
            ctx.error("E0307", message, ctx.document.key_span(written.at("from")))
        sources = []
    elif not any(s.path.endswith(".*") for s in sources):
        _check_arity(ctx, use, name, args)
    span, order = ctx.span(written.path), len(ctx.expansion.pending)
    node = Node(kind, name, span, op.name, args, spans, (), frame.guards, frame.scopes, order, numbered=frame.numbered)
    shares = {
        attribute: Source(frame.lookup + str(ref), ctx.span(written.at("share", attribute)), frame.lookup)
        for attribute, ref in written.layer.get("share", {}).items()
    }
    ctx.expansion.pending[name] = PendingNode(node, list(sources), shares)
    _activation(ctx, written, frame, node)
    if len(ctx.expansion.pending) > MAX_NODES:
        ctx.error("E0310", f"spec expands to more than {MAX_NODES} layers", node.span)
        raise Abort


def _check_arity(ctx: Context, use: Use, name: str, args: dict) -> None:
    """E0307 if the op takes another number of inputs than the use gives it (E0406 if a plugin's count fails)."""
    op: OpDef = use.callee
    span = ctx.span(use.written.path)
    try:
        low, high = op.arity_for(args)
    except Exception as error:
        failure = plugin_failure(op, error, " to count its inputs")
        if failure is None:
            raise
        ctx.error("E0406", f"layer '{name}': {failure}", span, "this is a bug in the plugin that defines the op")
        return
    count = len(use.sources)
    if not low <= count <= (high or count):
        want = f"{low}" if low == high else f"at least {low}" if high is None else f"{low} to {high}"
        ctx.error("E0307", f"layer '{name}' ({op.name}): takes {want} input(s), got {count}", span)


def _activation(ctx: Context, written: Written, frame: Frame, node: Node) -> None:
    """`activation: relu` is sugar for a relu node after the layer, named `NAME_relu`; the layer's
    name then refers to the activation's output."""
    if "activation" not in written.layer:
        return
    span = ctx.span(written.at("activation"))
    value = resolved(ctx, written.layer["activation"], frame.params, "'activation'", span)
    if value is INVALID or value is None or value == "none":
        return
    if value not in ctx.registry.activations:
        ctx.error("E0311", f"layer '{node.name}': unknown activation {value!r}", span, did_you_mean(str(value), ctx.registry.activations))
        return
    activation = ctx.registry.get(value)
    act_name = f"{node.name}_{value}"
    ctx.define(act_name, span)
    args = {p.name: p.default for p in activation.params}
    order = len(ctx.expansion.pending)
    act = Node(Kind.CALL, act_name, span, value, args, {}, (), node.guards, node.scopes, order, numbered=node.numbered)
    ctx.expansion.pending[act_name] = PendingNode(act, [Ref(node.name)])
    ctx.expansion.aliases[node.name] = act_name
