"""Instances of one block that read alike become one class (its parameters, the formulas of its values
and its shape comments are given by `parameters`)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from ..load import Document
from . import optional
from .formulas import Formula
from .instances import Instance, Member
from .namespace import class_name


@dataclass
class Parameter:
    name: str
    values: list[Any]
    """Its value at each virtual instance: each instance of the class in each observed build, the
    ejected build's first (so an instance's position is its index)."""
    default: bool = False


@dataclass
class Class:
    name: str
    block: str | None
    instances: list[Instance]
    parameters: list[Parameter] = field(default_factory=list)
    formulas: dict[int, Formula] = field(default_factory=dict)
    """Site number → its formula (see `parameters.site_values`); the other sites are written as their value."""
    comments: dict[tuple[str, ...], str] = field(default_factory=dict)
    """A line's shape comment, by the line's targets."""
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
    """(name, value, passed by position) of each constructor argument of a member."""
    if member.child is not None and member.absent:
        return [(p.name, optional.MISSING, False) for p in of[id(member.child)].parameters]
    if member.child is not None:
        return of[id(member.child)].arguments(member.child)
    return member.args
