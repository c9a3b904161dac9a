"""Model-level values: `params` with their `--set` overrides, the `variants` they select, and the
symbolic `sizes` of the inputs (`--set H=320` fixes one)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .diagnostics import Diagnostic, UsageError, did_you_mean
from .dims import MAX_VALUES, Size
from .load import Document
from .values import block_param_type, check_block_value

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
    sizes, diagnostics = _sizes(document)
    diagnostics += [
        Diagnostic("E0305", f"'{name}' is reserved for the copy index of a repeat", document.key_span(("params", name)), "rename it")
        for name in declared
        if name in RESERVED
    ]
    params = dict(declared)
    fixed: dict[str, int] = {}
    for key, value in overrides.items():
        if key in sizes:
            fixed[key] = _fixed_size(sizes[key], value)
        elif key in declared:
            problem = check_block_value(block_param_type(declared[key]), value)
            if problem:
                raise UsageError(f"--set {key}={value!r}: {problem}")
            params[key] = value
    variant_values, more = _variants(document, params, overrides)
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
    return ModelValues(params, sizes, fixed), diagnostics


def _fixed_size(size: Size, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not size.admits(value):
        raise UsageError(f"--set {size.name}={value!r}: must be {size.describe()}")
    return value


def _sizes(document: Document) -> tuple[dict[str, Size], list[Diagnostic]]:
    sizes, diagnostics = {}, []
    for name, spec in document.data.get("sizes", {}).items():
        size = Size(name, spec["min"], spec["max"], spec.get("multiple_of", 1), spec.get("default"))
        span = document.span(("sizes", name))
        count = len(size.values)
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
        sizes[name] = size
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
        if value not in rows:
            hint = did_you_mean(str(value), rows) or f"variants: {', '.join(rows)}"
            if selector in overrides:
                raise UsageError(f"--set {selector}={value!r}: no such variant; {hint}")
            diagnostics.append(
                Diagnostic("E0305", f"'{selector}' is {value!r}, which names no variant", document.span(("params", selector)), hint)
            )
            continue
        chosen.update(rows[value])
    return chosen, diagnostics
