"""The spec's declarations, read before expansion: the model's inputs (their shapes, from numbers,
parameters and symbolic sizes) and the block definitions' own rules."""

from __future__ import annotations

from typing import Any

from . import expr
from .diagnostics import Diagnostic, Span, did_you_mean
from .dims import Dim
from .load import Document, JsonPath
from .ops import TensorType
from .params import ModelValues
from .schema import BLOCK_PARAM_TYPES, LAYER_KEYS


def inputs(document: Document, values: ModelValues) -> tuple[dict[str, TensorType], dict[str, Span], list[Diagnostic]]:
    """Each input's type and where it is declared."""
    types, spans, diagnostics = {}, {}, []
    for name, declared in document.data["inputs"].items():
        shape, dtype = (declared, "float32") if isinstance(declared, list) else (declared["shape"], declared.get("dtype", "float32"))
        path = ("inputs", name) if isinstance(declared, list) else ("inputs", name, "shape")
        dims = tuple(_size(document, values, item, (*path, i), diagnostics) for i, item in enumerate(shape))
        types[name] = TensorType(dims, dtype)
        spans[name] = document.key_span(("inputs", name))
    return types, spans, diagnostics


def _size(document: Document, values: ModelValues, item: Any, path: JsonPath, diagnostics: list[Diagnostic]) -> Any:
    """One input dimension: a number, a fixed or symbolic size, or a parameter expression (1 if invalid)."""
    span = document.span(path)
    if isinstance(item, int):
        return item
    if item in values.fixed:
        return values.fixed[item]
    if item in values.sizes:
        size = values.sizes[item]
        return Dim.of(size) if len(size.values) > 1 else size.values[0]
    if isinstance(item, str) and item in document.data.get("sizes", {}):  # declared, but invalid: already reported
        return 1
    if not isinstance(item, str) or not item.startswith("$"):
        diagnostics.append(
            Diagnostic("E0313", f"input size '{item}' is not declared in sizes", span, did_you_mean(str(item), values.sizes))
        )
        return 1
    try:
        value = expr.evaluate(expr.parse(item), values.params)
    except expr.ExprError as error:
        diagnostics.append(Diagnostic("E0304", str(error), span))
        return 1
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        diagnostics.append(Diagnostic("E0311", f"an input size must be a positive integer, got {value!r}", span))
        return 1
    return value


def check_blocks(document: Document) -> list[Diagnostic]:
    """What a block definition may not be: with parameters named like layer keys, `i` (the copy index),
    or typed with a capitalised type name. (A block named like an op is refused by validate.)"""
    diagnostics = []
    for name, block in document.data.get("blocks", {}).items():
        for param, declared in block.get("params", {}).items():
            where = document.span(("blocks", name, "params", param))
            if param in LAYER_KEYS:
                diagnostics.append(
                    Diagnostic("E0305", f"block '{name}': parameter '{param}' has the name of a layer key", where, "rename it")
                )
            if param == "i":
                diagnostics.append(
                    Diagnostic("E0305", f"block '{name}': 'i' is reserved for the copy index of a repeat", where, "rename it")
                )
            if isinstance(declared, str) and declared not in BLOCK_PARAM_TYPES and declared.lower() in BLOCK_PARAM_TYPES:
                message = f"block '{name}': type names are lower case: write '{declared.lower()}', not '{declared}'"
                diagnostics.append(Diagnostic("E0305", message, where))
    return diagnostics
