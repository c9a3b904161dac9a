"""The root class's keyword arguments: the spec's model parameters that the ejected file can really take.

Each model parameter that holds a number or a flag (not one derived from others) is changed, to two
other values where it takes them, and the spec is built again. Where the classes stay the same and every
value that changes with it is a formula of the parameters (see `parameters`), it is offered: the root
takes it as a keyword argument (this build's value its default) and passes it down to every class
whose values read it (GPT's `n_embd` sizes `nn.Linear(n_embd, 3 * n_embd)` in `CausalSelfAttention`).
Where a value changes in a way no formula gives, or the classes change (another number of blocks), it
is not offered and stays a literal of this build: an argument that built a broken model would be worse.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .. import expr
from ..ir import TypedGraph
from ..load import Document
from ..ops import Registry
from .classes import Class, classes, local_names
from .code import EjectError
from .formulas import SpecText
from .instances import Instance, cut, describe
from .namespace import numbered, python_name
from .parameters import Observation, configure

Variant = Callable[[Mapping[str, Any]], TypedGraph | None]
"""Builds the spec with some model parameters overridden (None if that does not check)."""

BUILDS = 2
"""The other values each model parameter is built with (one for a flag)."""


def configure_all(
    found: list[Class],
    of: dict[int, Class],
    registry: Registry,
    document: Document,
    params: Mapping[str, Any],
    variant: Variant | None,
    reserved: frozenset[str],
) -> None:
    """Give every class its parameters, formulas and comments; the root (the last of `found`) takes the
    model parameters that qualify (none without `variant`), in the order the spec declares them, each
    named as the parameter where that shadows nothing (`class` becomes `class_`, see `namespace`)."""
    observations = [Observation(params, found, of)]
    if variant is not None:
        for name in _candidates(document, params):
            observations += _observations(name, params, variant, observations[0], registry, document, reserved)
    text = SpecText(document)
    avoid = local_names(reserved, [cls.name for cls in found])
    offered = {observed.changed for observed in observations[1:]}
    while True:
        kept = [observed for observed in observations if observed.changed is None or observed.changed in offered]
        keywords: dict[str, str] = {}
        for name in params:
            if name in offered:
                keywords[name] = numbered(python_name(name, avoid), {*avoid, *keywords.values()})
        blamed: set[str] = set()
        for k in range(len(found)):
            blamed |= configure(k, kept, keywords, text, avoid)
        if not blamed:
            return
        offered -= blamed


def _candidates(document: Document, params: Mapping[str, Any]) -> list[str]:
    """The model parameters that may be offered: declared with a number or a flag, not derived."""
    declared = document.data.get("params", {})
    return [name for name, value in params.items() if name in declared and not expr.is_expression(declared[name]) and _alternatives(value)]


def _alternatives(value: Any) -> list[Any]:
    """Other values of the same type to build the spec with, unlikely to coincide with one in the model."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return list(dict.fromkeys(v for v in (value * 2, value * 3, value + 1, value + 2) if v != value))
    if isinstance(value, float):
        return [value * 0.5 + 0.125, value * 0.25 + 0.0625]
    return []


def _observations(
    name: str,
    params: Mapping[str, Any],
    variant: Variant,
    ejected: Observation,
    registry: Registry,
    document: Document,
    reserved: frozenset[str],
) -> list[Observation]:
    """Builds of the spec with `name` changed, if they keep the classes; else none."""
    made: list[Observation] = []
    for changed in _alternatives(params[name]):
        graph = variant({name: changed})
        if graph is None:
            continue
        observed = _observe(graph, registry, document, reserved, {**params, name: changed}, name)
        if observed is None or not _same_form(ejected, observed):
            return []
        made.append(observed)
        if len(made) == (1 if isinstance(params[name], bool) else BUILDS):
            break
    return made


def _observe(
    graph: TypedGraph, registry: Registry, document: Document, reserved: frozenset[str], params: Mapping[str, Any], name: str
) -> Observation | None:
    root = cut(graph)
    try:
        describe(root, graph, registry)
    except EjectError:
        return None
    found, of = classes(root, document, reserved)
    return Observation(params, found, of, name)


def _same_form(a: Observation, b: Observation) -> bool:
    """Whether two builds have the same classes, written alike but for their values."""
    if [(cls.name, len(cls.instances)) for cls in a.found] != [(cls.name, len(cls.instances)) for cls in b.found]:
        return False
    return all(_form(x, a) == _form(y, b) for one, other in zip(a.found, b.found) for x, y in zip(one.instances, other.instances))


def _form(instance: Instance, observed: Observation) -> tuple:
    members = [(m.form, observed.index[id(observed.of[id(m.child)])] if m.child else None) for m in instance.members]
    lines = [line.form for line in instance.lines]
    return (members, lines, sorted(instance.absent), len(instance.inputs), len(instance.outputs))
