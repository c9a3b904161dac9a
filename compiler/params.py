"""Model-level values: `params` with their `--set` overrides, the `variants` they select, and the
symbolic `sizes` of the inputs (`--set H=320` fixes one)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import expr
from .diagnostics import Diagnostic, UsageError, did_you_mean
from .dims import MAX_VALUES, Size
from .load import Document
from .schema import SIZE_KEYS
from .values import INVALID, block_param_type, check_block_value

RESERVED = ("i",)
"""`$i` is the copy index inside a repeated layer; no parameter may take the name."""


@dataclass(frozen=True)
class ModelValues:
    params: dict[str, Any]
    sizes: dict[str, Size]
    fixed: dict[str, int]
    """Sizes fixed by `--set`: their inputs' dimensions are plain ints."""


def model_values(document: Document, overrides: Mapping[str, Any]) -> tuple[ModelValues, list[Diagnostic]]:
    """The model's parameters (variant rows applied, then overrides) and its declared sizes.

    Raises UsageError for an override that names nothing or has the wrong type or range."""
    data = document.data
    declared = dict(data.get("params", {}))
    sizes = {name: None for name in data.get("sizes", {})}
    diagnostics = [
        Diagnostic("E0305", f"'{name}' is reserved for the copy index of a repeat", document.key_span(("params", name)), "rename it")
        for name in declared
        if name in RESERVED
    ]
    params = dict(declared)
    fixed: dict[str, int] = {}
    for key, value in overrides.items():
        if key in declared:
            derived = expr.is_expression(declared[key])
            problem = None if derived else check_block_value(block_param_type(declared[key]), value)
            if problem:
                raise UsageError(f"--set {key}={value!r}: {problem}")
            params[key] = int(value) if block_param_type(declared[key]) == "int" and isinstance(value, float) else value
    variant_values, more = _variants(document, params, overrides)
    diagnostics += more
    sizes, more = _sizes(document, {**params, **variant_values})
    diagnostics += more
    for key in overrides:
        if key not in declared and key not in sizes and key not in variant_values:
            known = [*declared, *sizes, *variant_values]
            hint = did_you_mean(key, known)
            raise UsageError(
                f"--set {key}: the spec has no parameter '{key}'"
                + (f"; {hint}" if hint else f" (parameters: {', '.join(known) or 'none'})")
            )
    params = {**params, **variant_values, **{k: v for k, v in overrides.items() if k in variant_values}}
    diagnostics += _functions(document, params)
    diagnostics += _derive(document, params)
    fixed = {key: _fixed_size(sizes[key], value) for key, value in overrides.items() if key in sizes and sizes[key] is not None}
    return ModelValues(params, {k: v for k, v in sizes.items() if v is not None}, fixed), diagnostics


def _functions(document: Document, params: dict[str, Any]) -> list[Diagnostic]:
    """The spec's own functions, added to `params` (each body sees its arguments and the model's
    parameters, the other functions included). One that cannot be defined is INVALID, so that its
    calls are not reported again."""
    diagnostics = []
    for name, spec in document.data.get("functions", {}).items():
        made = _function(document, name, spec, params)
        if isinstance(made, Diagnostic):
            diagnostics.append(made)
            made = INVALID
        params[name] = made
    broken = True
    while broken:  # a function calling a broken one is broken too (silently: the cause is reported)
        broken = [n for n, f in params.items() if isinstance(f, expr.Function) and any(params.get(c) is INVALID for c in f.body.calls)]
        params.update(dict.fromkeys(broken, INVALID))
    return diagnostics


def _function(document: Document, name: str, spec: dict, params: dict[str, Any]) -> expr.Function | Diagnostic:
    span = document.span(("functions", name, "value"))
    if name in params or name in expr.PLAIN_FUNCTIONS or name in expr.SHAPE_FUNCTIONS:
        return Diagnostic(
            "E0305", f"function '{name}' has the name of a parameter or a builtin function", document.key_span(("functions", name))
        )
    args = tuple(spec.get("args", ()))
    try:
        body = expr.parse(spec["value"])
    except expr.ExprError as error:
        return Diagnostic("E0304", f"function '{name}': {error}", span)
    unknown = sorted(body.params - set(args) - params.keys() - document.data.get("functions", {}).keys())
    if body.refs or unknown:
        problem = f"its body reads shapes ({', '.join(sorted(body.refs))})" if body.refs else f"unknown parameter ${unknown[0]}"
        return Diagnostic("E0304", f"function '{name}': {problem}", span, "a function sees its args and the model's parameters")
    return expr.Function(name, args, body, params)


def _derive(document: Document, params: dict[str, Any]) -> list[Diagnostic]:
    """Parameters declared as expressions of the ones before them (`seq_length: $($image // $patch) ** 2 + 1`)
    take their values, in order; `--set` may still give one outright. One that cannot be evaluated is
    INVALID, and so, silently, is one derived from it."""
    diagnostics = []
    for key, value in list(params.items()):
        if not expr.is_expression(value) or key not in document.data.get("params", {}):
            continue
        try:
            parsed = expr.parse(value)
            invalid = any(params.get(name) is INVALID for name in parsed.params | parsed.calls)
            params[key] = INVALID if invalid else expr.evaluate(parsed, params)
        except expr.ExprError as error:
            diagnostics.append(Diagnostic("E0304", f"parameter '{key}': {error}", document.span(("params", key))))
            params[key] = INVALID
    return diagnostics


def _fixed_size(size: Size, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not size.admits(value):
        raise UsageError(f"--set {size.name}={value!r}: must be {size.describe()}")
    return value


def _sizes(document: Document, params: Mapping[str, Any]) -> tuple[dict[str, Size | None], list[Diagnostic]]:
    """The declared sizes; their bounds may be expressions of parameters (`max: $block_size`)."""
    sizes: dict[str, Size | None] = {}
    diagnostics: list[Diagnostic] = []
    for name, spec in document.data.get("sizes", {}).items():
        span = document.span(("sizes", name))
        bounds = {key: _bound(document, params, name, key, spec.get(key), diagnostics) for key in SIZE_KEYS}
        if 0 in bounds.values():
            sizes[name] = None
            continue
        size = Size(name, bounds["min"], bounds["max"], bounds["multiple_of"] or 1, bounds["default"])
        count = len(size.values)
        before = len(diagnostics)
        if count == 0:
            diagnostics.append(Diagnostic("E0313", f"size {size.describe()} admits no value", span))
        elif count > MAX_VALUES:
            hint = "declare a multiple_of, or a narrower range"
            diagnostics.append(
                Diagnostic("E0313", f"size {size.describe()} takes {count:,} values; the limit is {MAX_VALUES:,}", span, hint)
            )
        elif size.default is not None and not size.admits(size.default):
            where = document.span(("sizes", name, "default"))
            diagnostics.append(Diagnostic("E0313", f"default {size.default} of size {name} is outside {size.describe()}", where))
        sizes[name] = size if len(diagnostics) == before else None  # an invalid size is reported once, then left out
    return sizes, diagnostics


def _variants(document: Document, params: dict[str, Any], overrides: Mapping[str, Any]) -> tuple[dict[str, Any], list[Diagnostic]]:
    """The values of the variant rows that the selecting parameters pick (`variants: {scale: {n: {...}}}`)."""
    chosen: dict[str, Any] = {}
    diagnostics: list[Diagnostic] = []
    for selector, rows in document.data.get("variants", {}).items():
        span = document.key_span(("variants", selector))
        if selector not in params:
            diagnostics.append(
                Diagnostic(
                    "E0305", f"variants are selected by '{selector}', which is not a parameter", span, did_you_mean(selector, params)
                )
            )
            continue
        keys = [set(row) for row in rows.values()]
        if any(k != keys[0] for k in keys):
            diagnostics.append(Diagnostic("E0305", f"every variant of '{selector}' must set the same parameters", span))
        clash = sorted(keys[0] & set(params))
        if clash:
            diagnostics.append(
                Diagnostic("E0305", f"variant rows set '{clash[0]}', which is also declared in params", span, "declare it in one place")
            )
        value = params[selector]
        if isinstance(value, (list, dict)) or value not in rows:  # a list or mapping names no row (and is no key)
            shown = expr.short(value)
            hint = did_you_mean(shown, rows) or f"variants: {', '.join(rows)}"
            if selector in overrides:
                raise UsageError(f"--set {selector}={shown}: no such variant; {hint}")
            diagnostics.append(
                Diagnostic("E0305", f"'{selector}' is {shown}, which names no variant", document.span(("params", selector)), hint)
            )
            chosen.update(dict.fromkeys(keys[0], INVALID))  # their readers are not reported again
            continue
        chosen.update(rows[value])
    return chosen, diagnostics


def _bound(document: Document, params: Mapping[str, Any], name: str, key: str, value: Any, diagnostics: list[Diagnostic]) -> Any:
    """One bound of a size: an int, or an expression of the model's parameters giving a positive int;
    0 for an invalid one (reported)."""
    if not isinstance(value, str):
        return value
    span = document.span(("sizes", name, key))
    try:
        result = expr.evaluate(expr.parse(value), params)
    except expr.ExprError as error:
        diagnostics.append(Diagnostic("E0313", f"size {name}: '{key}': {error}", span))
        return 0
    if not isinstance(result, int) or isinstance(result, bool) or result < 1:
        diagnostics.append(Diagnostic("E0313", f"size {name}: '{key}' must be a positive integer, got {result!r}", span))
        return 0
    return result
