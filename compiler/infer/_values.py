"""The values a node reads: its inputs (skipped nodes passed through, `x.*` expanded, picks checked)
and the arguments and guards that read inferred shapes, evaluated once each."""

from __future__ import annotations

from typing import Any

from .. import expr
from ..dims import Undecided, is_symbolic, show_point
from ..ir import ALL, Deferred, Node, Ref
from ..link import SKIPPED_TENSOR_HINT
from ..ops import OpDef, TensorType
from ..values import check_value, integral
from ._context import Context, Failed


def inputs_of(ctx: Context, node: Node) -> tuple[Ref, ...]:
    """The values a node reads; Failed if one of them could not be typed."""
    if any(ref.node in ctx.failed for ref in node.inputs):
        raise Failed
    refs: list[Ref] = []
    for ref in node.inputs:
        refs += _expand(ctx, node, ref)
    return tuple(refs)


def _expand(ctx: Context, node: Node, ref: Ref) -> list[Ref]:
    """The values `ref` stands for, as `node` reads it."""
    if ref.node in ctx.passed:
        return [ctx.passed[ref.node]]
    if ref.node in ctx.absent:
        line = ctx.absent[ref.node].line
        message = (
            f"layer '{node.name}' reads '{ref.node}', a learnable tensor that its condition (line {line}) skips: "
            "it has no value to pass through"
        )
        ctx.fail("E0314", message, node.span, SKIPPED_TENSOR_HINT)
    if ref.node not in ctx.typed:
        raise Failed
    source = ctx.typed[ref.node]
    count, several = len(source.outputs), source.tuple_valued
    if ref.index == ALL:
        return [Ref(ref.node, i) for i in range(count)] if several else [Ref(ref.node)]
    if ref.index is None and several:
        picks = f"{ref.node}.0 … {ref.node}.{count - 1}" if count > 1 else f"{ref.node}.0"
        ctx.fail("E0404", f"layer '{node.name}' reads '{ref.node}', which has {count} output(s): pick one ({picks})", node.span)
    if ref.index is not None and ref.index >= count:
        ctx.fail("E0404", f"layer '{node.name}' reads '{ref}', but '{ref.node}' has {count} output(s)", node.span)
    return [ref if several else Ref(ref.node)]


def types_of(ctx: Context, refs: tuple[Ref, ...]) -> tuple[TensorType, ...]:
    return tuple(ctx.typed[ref.node].outputs[ref.index or 0] for ref in refs)


def _shape_of(ctx: Context, deferred: Deferred, name: str) -> tuple[Any, ...]:
    """The shape of the value the expression's reference `name` reads."""
    ref = deferred.refs[name]
    if ref is None or ref.node in ctx.failed:
        raise Failed
    refs = _expand(ctx, ctx.graph.nodes[ref.node], ref)
    return types_of(ctx, tuple(refs[:1]))[0].shape


def _evaluate(ctx: Context, node: Node, deferred: Deferred) -> Any:
    """A shape-reading value; the block arguments it uses are evaluated first (once each)."""
    if id(deferred) in ctx.memo:
        return ctx.memo[id(deferred)]
    params = {key: _evaluate(ctx, node, v) if isinstance(v, Deferred) else v for key, v in deferred.params.items()}
    try:
        value = expr.evaluate(deferred.expr, params, lambda name: _shape_of(ctx, deferred, name))
    except expr.ExprError as error:
        ctx.fail("E0402", f"layer '{node.name}' ({node.op}): {error}", deferred.span)
    except Undecided as undecided:
        where = f"it holds at {show_point(undecided.holds)} but not at {show_point(undecided.fails)}"
        ctx.fail("E0403", f"layer '{node.name}': '{deferred.expr.text}' is not decided by the declared sizes: {where}", deferred.span)
    ctx.memo[id(deferred)] = value
    return value


def decide(ctx: Context, node: Node, guard: Deferred) -> bool:
    """Whether a condition that reads shapes holds; one that skips a layer keeping its position is
    remembered for W0401."""
    decided = bool(_evaluate(ctx, node, guard))
    if not decided and guard.gap is not None:
        ctx.gaps.setdefault(guard.span, guard.gap)
    return decided


def argument(ctx: Context, node: Node, op: OpDef, key: str) -> Any:
    """The node's argument `key`, evaluated (and checked) if it reads shapes."""
    value = node.args[key]
    if isinstance(value, list) and any(isinstance(v, Deferred) for v in value):
        value = [_evaluate(ctx, node, v) if isinstance(v, Deferred) else v for v in value]
    elif isinstance(value, Deferred):
        value = _evaluate(ctx, node, value)
    else:
        return value
    span = node.arg_spans.get(key, node.span)
    if is_symbolic(value):
        ctx.fail("E0403", f"layer '{node.name}' ({node.op}): '{key}' must be a fixed size, but it depends on {value}", span)
    value = integral(op.param_index[key].schema, value)
    problem = check_value(op.param_index[key], value)
    if problem:
        ctx.fail("E0402", f"layer '{node.name}' ({node.op}): '{key}' {problem}", span)
    return value
