"""Instances of one block that read alike become one class; the values in which they differ become its
constructor's parameters.

A value gets its name from the spec where the spec wrote it as a parameter (`out: $width` names the
convolution's `out_channels` `width`); a value that differs between instances without such a name is
named after the argument (`in_channels`), or after a named value that always equals it. The root
class's arguments are chosen apart (see `keywords`).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from ..load import Document
from ..names import MODULE_ATTRIBUTES
from . import optional
from .instances import Instance, Member, identifier
from .namespace import class_name, python_name

_PARAMETER = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)\Z")


@dataclass
class Parameter:
    name: str
    values: list[Any]
    default: bool = False


@dataclass
class Class:
    name: str
    block: str | None
    instances: list[Instance]
    parameters: list[Parameter] = field(default_factory=list)
    slots: dict[int, str] = field(default_factory=dict)
    """Slot number → the parameter it reads; the other slots are written as their value."""
    units: list[str] = field(default_factory=list)
    """Optional layers some instances lack: each is a flag parameter of the class."""
    flags: dict[str, str] = field(default_factory=dict)
    """Optional layer → the name of its flag parameter."""

    @property
    def first(self) -> Instance:
        return self.instances[0]

    def position(self, instance: Instance) -> int:
        return next(i for i, other in enumerate(self.instances) if other is instance)

    def arguments(self, instance: Instance) -> list[tuple[str, Any, bool]]:
        """The keyword arguments that build `instance` with this class."""
        index = self.position(instance)
        return [(p.name, p.values[index], False) for p in self.parameters]


def classes(root: Instance, document: Document, reserved: frozenset[str]) -> tuple[list[Class], dict[int, Class]]:
    """Every class, dependencies first (the root's last), and the class of each instance (by id).
    No name given shadows a `reserved` one (see `namespace`)."""
    groups: list[list[Instance]] = []
    group_of: dict[int, int] = {}
    for instance in _post_order(root):
        instance.original = (instance.members, instance.lines)
        index = _join(instance, groups, group_of)
        if index is None:
            groups.append([instance])
            index = len(groups) - 1
        group_of[id(instance)] = index
    names: list[str] = []
    for group in groups:
        names.append(class_name(group[0].block or str(document.data.get("name", "model")), reserved, names))
    found: list[Class] = []
    of: dict[int, Class] = {}
    for group, name in zip(groups, names):
        cls = Class(name, group[0].block, group, units=sorted({u for i in group for u in i.absent}))
        for instance in cls.instances:
            of[id(instance)] = cls
        if cls.block is not None:  # the root's arguments are chosen by `keywords`, which can check them
            _parameters(cls, of, document, local_names(reserved, names))
        found.append(cls)
    return found, of


def local_names(reserved: frozenset[str], class_names: Collection[str]) -> frozenset[str]:
    """The names a method's parameters and values must not take: the reserved ones and the classes."""
    return reserved | set(class_names)


def _join(instance: Instance, groups: list[list[Instance]], group_of: dict[int, int]) -> int | None:
    """The group `instance` joins: one whose template it equals or fits, or one that fits it (it then
    becomes the template); None for a new group."""

    def same_child(a: Instance, b: Instance) -> bool:
        return group_of[id(a)] == group_of[id(b)]

    for index, group in enumerate(groups):
        template = group[0]
        if template.block != instance.block:
            continue
        if _shape(template, group_of) == _shape(instance, group_of):
            group.append(instance)
            return index
        units = optional.fit(instance, template, same_child)
        if units is not None:
            optional.pad(instance, template, units)
            group.append(instance)
            return index
        fits = [optional.fit(_restored(other), instance, same_child) for other in group]
        if all(units is not None for units in fits):
            for other, units in zip(group, fits):
                optional.pad(other, instance, units)
            group.insert(0, instance)
            return index
        for other in group:
            _repad(other, template, same_child)
    return None


def _restored(instance: Instance) -> Instance:
    assert instance.original is not None
    instance.members, instance.lines = instance.original
    instance.absent = set()
    return instance


def _repad(instance: Instance, template: Instance, same_child) -> None:
    if instance is template:
        return
    units = optional.fit(instance, template, same_child)
    if units is not None:
        optional.pad(instance, template, units)


def _post_order(instance: Instance):
    for child in instance.children:
        yield from _post_order(child)
    yield instance


def _shape(instance: Instance, group_of: dict[int, int]) -> tuple:
    members = tuple((m.shape, group_of[id(m.child)] if m.child else None) for m in instance.members)
    lines = tuple(line.shape for line in instance.lines)
    return (members, lines, len(instance.inputs), tuple(str(r) for r in _relative_outputs(instance)))


def _relative_outputs(instance: Instance) -> list[str]:
    return [instance.relative(ref.node) + ("" if ref.index is None else f".{ref.index}") for ref in instance.outputs]


def member_arguments(member: Member, of: dict[int, Class]) -> list[tuple[str, Any, bool]]:
    if member.child is not None and member.absent:
        return [(p.name, optional.MISSING, False) for p in of[id(member.child)].parameters]
    if member.child is not None:
        return of[id(member.child)].arguments(member.child)
    return member.args


def slot_values(instance: Instance, of: dict[int, Class]) -> list[Any]:
    return [value for member in instance.members for _, value, _ in member_arguments(member, of)]


def _parameters(cls: Class, of: dict[int, Class], document: Document, avoid: frozenset[str]) -> None:
    vectors = [list(v) for v in zip(*(slot_values(i, of) for i in cls.instances))] if cls.first.members else []
    argument_names = [name for member in cls.first.members for name, _, _ in member_arguments(member, of)]
    spelled = _spelled(cls, of, document)
    names: dict[int, str] = {}
    used: dict[str, list[Any]] = {}

    def take(slot: int, wanted: str) -> None:
        name = python_name(wanted, avoid)
        while name in avoid or (name in used and not _agree(used[name], vectors[slot])):
            name = _next_name(name)
        used[name] = _merged(used.get(name), vectors[slot])
        names[slot] = name

    for slot, name in spelled.items():
        take(slot, name)
    for slot, values in enumerate(vectors):
        present = {repr(v) for v in values if v is not optional.MISSING}
        if slot not in names and len(present) > 1:
            same = [name for name, vector in used.items() if _agree(vector, values)]
            take(slot, same[0] if same else argument_names[slot])
    for slot in sorted(names):
        cls.slots[slot] = names[slot]
    for name in dict.fromkeys(names[slot] for slot in sorted(names)):
        vector = used[name]
        fill = next((v for v in vector if v is not optional.MISSING), None)
        cls.parameters.append(Parameter(name, [fill if v is optional.MISSING else v for v in vector]))
    taken = set(used) | ({m.path.split(".")[0] for m in cls.first.members} - set(cls.units))
    for unit in cls.units:
        name = python_name(unit if identifier(unit) else _unit_op(cls.first, unit), avoid)
        while name in taken or name in avoid or name in MODULE_ATTRIBUTES:  # the flag is also an attribute
            name = _next_name(name)
        taken.add(name)
        used[name] = []
        cls.flags[unit] = name
        cls.parameters.append(Parameter(name, [unit not in i.absent for i in cls.instances]))


def _unit_op(instance: Instance, unit: str) -> str:
    """A name for an optional function: its op (`relu`)."""
    ops = [line.op for line in instance.lines if optional.top(optional.line_path(line)) == unit and line.op]
    return ops[0] if ops and identifier(ops[0]) else "optional"


def _agree(a: list[Any], b: list[Any]) -> bool:
    """Equal wherever both have a value."""
    return all(repr(x) == repr(y) for x, y in zip(a, b) if x is not optional.MISSING and y is not optional.MISSING)


def _merged(a: list[Any] | None, b: list[Any]) -> list[Any]:
    return b if a is None else [y if x is optional.MISSING else x for x, y in zip(a, b)]


def _next_name(name: str) -> str:
    stem, _, number = name.rpartition("_")
    return f"{stem}_{int(number) + 1}" if stem and number.isdigit() else f"{name}_2"


def _spelled(cls: Class, of: dict[int, Class], document: Document) -> dict[int, str]:
    """Slots every instance's spec writes as one `$parameter` (the same one)."""
    lines = document.text.splitlines()
    agreed: dict[int, str | None] = {}
    for instance in cls.instances:
        slot = 0
        for member in instance.members:
            for name, value, _ in member_arguments(member, of):
                if not member.absent:
                    spelling = _spelling(member, name, value, lines)
                    agreed[slot] = spelling if agreed.get(slot, spelling) == spelling else None
                slot += 1
    return {slot: name for slot, name in agreed.items() if name is not None}


def _spelling(member: Member, name: str, value: Any, lines: list[str]) -> str | None:
    """`width` where the spec argument that makes this constructor argument is written `$width`."""
    argument = member.sources.get(name)
    if argument is None or member.node is None or argument not in member.node.node.arg_spans:
        return None
    span = member.node.node.arg_spans[argument]
    if span.end_line != span.line or span.line > len(lines) or repr(member.node.args[argument]) != repr(value):
        return None
    match = _PARAMETER.match(lines[span.line - 1][span.col - 1 : (span.end_col or 0) - 1].strip())
    return match.group(1) if match else None
