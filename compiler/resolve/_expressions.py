"""The `$` expressions of a layer during resolve: values, name templates and conditions. A value that
reads inferred shapes, directly (`channels(input)`) or through a block argument that does, becomes a
`Deferred` for infer; the places that need a value before shapes are known (`repeat`, names,
`activation`) say so."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .. import expr
from ..diagnostics import Span, did_you_mean
from ..ir import Deferred
from ..load import JsonPath
from ..values import INVALID
from ._context import Context, Env, Frame, Written


class _Hidden:
    """A caller's parameter, which a block does not see: kept only to explain that."""


HIDDEN: Any = _Hidden()
_SCOPE_HINT = (
    "a block sees its own parameters and the model's, not its caller's: declare '{name}' in the block's params and pass {name}: ${name}"
)

_TEMPLATE_PART = re.compile(r"\{([^{}]*)\}")
_COPY_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*\Z")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")


def evaluate(ctx: Context, value: Any, env: Env, span: Span, path: JsonPath | None = None) -> Any:
    """A literal, an evaluated expression, or a Deferred one; lists and mappings element-wise (an
    element's diagnostics point at the element when its `path` is known)."""
    if isinstance(value, (list, dict)):
        items = enumerate(value) if isinstance(value, list) else value.items()
        evaluated = {
            key: evaluate(ctx, item, env, ctx.span((*path, key)) if path else span, (*path, key) if path else None) for key, item in items
        }
        return list(evaluated.values()) if isinstance(value, list) else evaluated
    if not expr.is_expression(value):
        return value
    return expression(ctx, value, env, span)


def expression(ctx: Context, text: str, env: Env, span: Span) -> Any:
    """The value of one expression, a Deferred if it reads shapes, or INVALID after reporting E0304."""
    try:
        parsed = expr.parse(text)
    except expr.ExprError as error:
        ctx.error("E0304", str(error), span)
        return INVALID
    if _unknown_name(ctx, parsed, text, env.params, span):
        return INVALID
    used = {name: env.params[name] for name in parsed.params | parsed.calls}
    if any(value is INVALID for value in used.values()):
        return INVALID
    if parsed.needs_shapes or any(isinstance(value, Deferred) for value in used.values()):
        return Deferred(parsed, used, {ref: env.lookup + ref for ref in parsed.refs}, span)
    try:
        return expr.evaluate(parsed, used)
    except expr.ExprError as error:
        ctx.error("E0304", str(error), span)
        return INVALID


def _unknown_name(ctx: Context, parsed: expr.Expression, text: str, params: Mapping[str, Any], span: Span) -> bool:
    """Report (E0304) a parameter the expression cannot see, or a function nobody defines."""
    missing = sorted(name for name in parsed.params if isinstance(params.get(name, HIDDEN), _Hidden))
    if missing:
        name = missing[0]
        hint = _SCOPE_HINT.format(name=name) if name in params else did_you_mean(name, [k for k, v in params.items() if v is not HIDDEN])
        ctx.error("E0304", f"unknown parameter ${name} in '{text}'", span, hint)
        return True
    unknown = [name for name in expr.unknown_functions(parsed, params) if params.get(name) is not INVALID]
    if unknown:
        hint = did_you_mean(unknown[0], [*expr.PLAIN_FUNCTIONS, *expr.SHAPE_FUNCTIONS, *params])
        ctx.error("E0304", f"unknown function '{unknown[0]}' in '{text}' (known: {expr.known_functions(params)})", span, hint)
        return True
    return False


def resolved(ctx: Context, value: Any, params: Mapping[str, Any], what: str, span: Span) -> Any:
    """A value needed before shapes are known."""
    result = evaluate(ctx, value, Env(params), span)
    if reads_shapes(result):
        ctx.error("E0311", f"{what} is needed before shapes are inferred, so it cannot read them ({value})", span)
        return INVALID
    return result


def template(ctx: Context, text: str, params: Mapping[str, Any], span: Span) -> str:
    """A name template such as `denselayer{$i + 1}`: each `{…}` is an expression."""

    def part(match: re.Match) -> str:
        inner = match.group(1).strip()
        value = resolved(ctx, inner if expr.is_expression(inner) else f"${inner}", params, "a repeat name", span)
        return "?" if value is INVALID else str(value)

    return _TEMPLATE_PART.sub(part, text)


def templated_name(ctx: Context, text: str, params: Mapping[str, Any], span: Span, copy: int | None = None) -> str:
    """A repeat copy's name (`copy` its index) or a layer id made from a template; E0311 if it is no name."""
    reported = len(ctx.diagnostics)
    name = template(ctx, text, params, span)
    if len(ctx.diagnostics) > reported:  # a part that failed is reported already
        return name
    if copy is not None and not _COPY_NAME.match(name):
        ctx.error("E0311", f"repeat names copy {copy} '{name}': a name is letters, digits, '_' and '-'", span)
    elif copy is None and not _IDENTIFIER.match(name):
        ctx.error("E0311", f"id template '{text}' gives '{name}': an id is a letter or '_', then letters, digits and '_'", span)
    return name


def condition(ctx: Context, written: Written, frame: Frame) -> bool | Deferred | None:
    """None without `when`; else True, False, or a Deferred to decide once shapes are known."""
    if "when" not in written.layer:
        return None
    when = written.layer["when"]
    span = ctx.span(written.at("when"))
    if isinstance(when, bool):
        return when
    text = when if expr.is_expression(when) else f"${when}"
    value = expression(ctx, text, frame.env, span)
    if value is INVALID:
        return None
    return value if isinstance(value, Deferred) else bool(value)


def reads_shapes(value: Any) -> bool:
    return holds(value, Deferred)


def holds(value: Any, kind: Any) -> bool:
    """True if `value`, or an item of a list or mapping in it, is `kind` (an instance of a class, or
    that very object)."""
    if isinstance(value, (list, dict)):
        return any(holds(v, kind) for v in (value.values() if isinstance(value, dict) else value))
    return isinstance(value, kind) if isinstance(kind, type) else value is kind
