"""The arguments of an op node or a block call: each value of the layer picked for its repeat copy,
evaluated, and checked against the op's parameters or the block's declared ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import expr
from ..diagnostics import Span, did_you_mean
from ..ops import REQUIRED, OpDef
from ..schema import BLOCK_PARAM_TYPES, LAYER_KEYS
from ..values import INVALID, block_param_type, check_block_value, check_value, integral
from ._context import Context, Env, Frame, Repetition, Use
from ._expressions import HIDDEN, evaluate, holds, reads_shapes


def op_args(ctx: Context, use: Use, frame: Frame, name: str) -> tuple[dict, dict]:
    """The op's arguments (defaults filled in) and where each was written."""
    op: OpDef = use.callee
    values, spans = _layer_values(ctx, use, frame.env, lambda key: op.param_index[key].is_scalar)
    args = {}
    for param in op.params:
        value = values.get(param.name, param.default)
        if value is REQUIRED or holds(value, INVALID):
            continue
        if isinstance(value, dict) and reads_shapes(value):
            message = f"layer '{name}' ({op.name}): '{param.name}' is needed to build the layer, so it cannot read shapes"
            ctx.error("E0311", message, spans[param.name])
            continue
        if not reads_shapes(value):
            value = integral(param.schema, value)
            problem = check_value(param, value)
            if problem:
                where = spans.get(param.name, ctx.span(use.written.path))
                ctx.error("E0311", f"layer '{name}' ({op.name}): '{param.name}' {problem}", where)
        args[param.name] = value
    return args, spans


def block_args(ctx: Context, use: Use, frame: Frame, own: str) -> dict:
    """The block's parameters: the model's, then the block's own (arguments, else defaults; a default
    may be an expression of the parameters before it, or read the block's input, looked up under the
    block's own prefix `own`). A block never sees its caller's parameters."""
    name, written = use.callee.block, use.written
    declared = use.callee.spec.get("params", {})
    types = {key: block_param_type(value) for key, value in declared.items()}
    values, spans = _layer_values(ctx, use, frame.env, lambda key: types.get(key) != "list")
    params = {**dict.fromkeys(frame.params, HIDDEN), **ctx.model}
    for key, value in values.items():
        if key not in declared:
            hint = did_you_mean(key, declared) or f"block '{name}' takes: {', '.join(declared) or 'no parameters'}"
            where = f"layer '{written.layer.get('id', written.path[-1])}'"
            ctx.error("E0305", f"{where}: block '{name}' has no parameter '{key}'", ctx.document.key_span(written.at(key)), hint)
            continue
        problem = None if value is INVALID or reads_shapes(value) else check_block_value(types[key], value)
        if problem:
            ctx.error("E0305", f"block '{name}': parameter '{key}' {problem}", spans[key])
        params[key] = INVALID if problem else int(value) if types[key] == "int" and isinstance(value, float) else value
    for key, default in declared.items():
        if key not in values:
            params[key] = _default(ctx, use, key, default, Env(params, own))
    return params


def _default(ctx: Context, use: Use, key: str, default: Any, env: Env) -> Any:
    """The value of a block parameter the call does not pass; E0305 if it has no default."""
    name, written = use.callee.block, use.written
    if isinstance(default, str) and default in BLOCK_PARAM_TYPES:
        where = f"layer '{written.layer.get('id', written.path[-1])}': "
        ctx.error("E0305", f"{where}block '{name}' needs parameter '{key}' ({default})", ctx.span(written.path))
        return INVALID
    return evaluate(ctx, default, env, ctx.span(("blocks", name, "params", key))) if expr.is_expression(default) else default


def _layer_values(ctx: Context, use: Use, env: Env, scalar_of: Callable[[str], bool]) -> tuple[dict, dict]:
    """Each argument of a layer, its per-repetition value picked and its expression evaluated."""
    written, rep = use.written, use.rep
    if rep is not None:
        env = Env({**env.params, "i": rep[0]}, env.lookup)
    values, spans = {}, {}
    for key, raw in written.layer.items():
        if key in LAYER_KEYS:
            continue
        span = spans[key] = ctx.span(written.at(key))
        scalar = scalar_of(key)
        picked = _one_value(ctx, raw, rep, key, span) if scalar else raw
        path = written.at(key, rep[0]) if rep is not None and picked is not raw else written.at(key)
        value = INVALID if picked is INVALID else evaluate(ctx, picked, env, span, path)
        if scalar and picked is raw and isinstance(value, list) and not isinstance(raw, list):  # `out: $widths`: a list parameter
            value = _one_value(ctx, value, rep, key, span)
        values[key] = value
    return values, spans


def _one_value(ctx: Context, value: Any, rep: Repetition, key: str, span: Span) -> Any:
    """A scalar argument's value for this copy: a list gives one value per repetition (E0306 if it
    does not match the repeat, or outside one)."""
    if not isinstance(value, list):
        return value
    if rep is None:
        ctx.error("E0306", f"'{key}' takes one value; a list gives one value per repetition and needs 'repeat'", span)
        return INVALID
    if len(value) != rep[1]:
        ctx.error("E0306", f"'{key}' has {len(value)} values for {rep[1]} repetitions", span)
        return INVALID
    return value[rep[0]]
