"""The root class's keyword arguments: the spec's model parameters that the ejected file can really
take as arguments.

A model parameter qualifies when building the spec with another value of it changes nothing in the
ejected file but values at the root that become exactly the new value: `num_classes` (the head's
`out_features`) does; `d_model` of a transformer layer does not (it also sizes layers through values
computed from it, and shapes inside blocks), so it stays a literal of this build rather than an
argument that would build a broken model. The check builds the spec once more per parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..ir import TypedGraph
from ..load import Document
from ..ops import Registry
from .classes import Class, Parameter, classes, local_names, slot_values
from .instances import cut, describe
from .namespace import numbered, python_name

Variant = Callable[[Mapping[str, Any]], TypedGraph | None]
"""Builds the spec with some model parameters overridden (None if that does not check)."""


def root_keywords(
    found: list[Class],
    of: dict[int, Class],
    registry: Registry,
    document: Document,
    params: Mapping[str, Any],
    variant: Variant,
    reserved: frozenset[str],
) -> None:
    """Give the root class (the last of `found`) the keyword arguments that qualify, in the order
    the spec declares its parameters, with this build's values (`params`) as defaults; each named
    as the parameter where that shadows nothing (`class` becomes `class_`, see `namespace`)."""
    root = found[-1]
    slots = slot_values(root.first, of)
    avoid = local_names(reserved, [cls.name for cls in found])
    for name, value in params.items():
        changed = _changed(value)
        if changed is None:
            continue
        other = variant({name: changed})
        if other is None:
            continue
        bound = _bound(found, of, slots, other, registry, document, value, changed, reserved)
        if bound:
            given = numbered(python_name(name, avoid), {*avoid, *(p.name for p in root.parameters)})
            root.parameters.append(Parameter(given, [value], default=True))
            for slot in bound:
                root.slots[slot] = given


def _changed(value: Any) -> Any:
    """Another value of the same type, unlikely to coincide with a value already in the model."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value * 2 + 7
    if isinstance(value, float):
        return value * 0.5 + 0.125
    return None


def _bound(
    found: list[Class],
    of: dict[int, Class],
    slots: list[Any],
    other: TypedGraph,
    registry: Registry,
    document: Document,
    value: Any,
    changed: Any,
    reserved: frozenset[str],
) -> list[int]:
    """The root slots that follow the parameter, if nothing else in the file does; else []."""
    root = cut(other)
    describe(root, other, registry)
    found2, of2 = classes(root, document, reserved)
    if len(found2) != len(found) or any(a.name != b.name or len(a.instances) != len(b.instances) for a, b in zip(found, found2)):
        return []
    for before, after in zip(found, found2):
        if [[line.shape for line in i.lines] for i in before.instances] != [[line.shape for line in i.lines] for i in after.instances]:
            return []  # the forward code itself changes
        if before is not found[-1] and repr([slot_values(i, of) for i in before.instances]) != repr(
            [slot_values(i, of2) for i in after.instances]
        ):
            return []  # a block's values change: they are written inside its class
    new = slot_values(found2[-1].first, of2)
    if len(new) != len(slots):
        return []
    bound = []
    for slot, (old, now) in enumerate(zip(slots, new)):
        if repr(old) == repr(now):
            continue
        if repr(old) != repr(value) or repr(now) != repr(changed):
            return []
        bound.append(slot)
    return bound
