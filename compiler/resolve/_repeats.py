"""`repeat`: how many copies a layer makes, whether each reads the previous one, and their names."""

from __future__ import annotations

from dataclasses import dataclass

from ..values import INVALID, integral
from ._context import Context, Frame, Written
from ._expressions import resolved, templated_name
from ._layer_fields import templated


@dataclass(frozen=True)
class Repeat:
    count: int
    names: str | None  # None: name.0 … name.N-1; "flat"; or a template
    chain: bool = True  # each copy reads the previous one; else each reads the layer's `from`


def repeat_of(ctx: Context, written: Written, frame: Frame) -> Repeat | None:
    """The layer's `repeat` (one copy after reporting a count that is not 1 to 1000); None without one."""
    layer = written.layer
    if "repeat" not in layer:
        return None
    spec = layer["repeat"]
    count, names = (spec.get("count"), spec.get("names")) if isinstance(spec, dict) else (spec, None)
    chain = spec.get("chain", True) and not templated(layer.get("from")) if isinstance(spec, dict) else not templated(layer.get("from"))
    where = ctx.span(written.at("repeat", "count") if isinstance(spec, dict) else written.at("repeat"))
    value = integral({"type": "integer"}, resolved(ctx, count, frame.params, "'repeat'", where))
    if value is INVALID:
        return Repeat(1, names, chain)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1000:
        ctx.error("E0311", f"'repeat' must be an integer from 1 to 1000, got {value!r}", where)
        return Repeat(1, names, chain)
    return Repeat(value, names, chain)


def copy_names(ctx: Context, written: Written, frame: Frame, base: str, repeat: Repeat) -> list[str | None] | None:
    """Each copy's name (None: the next flat position, taken as it is expanded); None after reporting a
    template that gives a copy no valid name, or two copies one name (nothing is expanded then, so
    no cascade of duplicates follows). `base` is the repeated layer's name."""
    if repeat.names is None:
        return [f"{base}.{rep}" for rep in range(repeat.count)]
    if repeat.names == "flat":
        return [None] * repeat.count
    span = ctx.span(written.at("repeat", "names"))
    names: list[str | None] = []
    for rep in range(repeat.count):
        reported = len(ctx.diagnostics)
        name = templated_name(ctx, repeat.names, {**frame.params, "i": rep}, span, copy=rep)
        if len(ctx.diagnostics) > reported:
            return None
        full = f"{base}.{name}" if written.local is not None else frame.prefix + name
        if full in names:
            message = f"repeat names '{repeat.names}' gives copies {names.index(full)} and {rep} the same name '{name}'"
            ctx.error("E0311", message, span, "make each copy's name differ, for instance with its index: '{$i}'")
            return None
        names.append(full)
    return names
