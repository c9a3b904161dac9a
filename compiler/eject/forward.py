"""A class's `forward` as Python source: one line per layer, reading as hand-written code, each value a
literal or its formula, with the shape of each value in a comment (see `parameters`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..ir import TypedGraph
from ..load import Document
from ..names import MODULE_ATTRIBUTES
from . import code
from .classes import Class
from .instances import Line
from .namespace import numbered, python_name
from .optional import line_path, top
from .render import Tree, access, token_path


@dataclass
class Body:
    """What forward's lines are written from."""

    cls: Class
    tree: Tree
    names: dict[str, str]
    """Token → its variable."""
    sites: dict[tuple[str, ...], int]
    """Line targets → the site of its first value."""
    stored: dict[str, str]
    """Parameter → the attribute forward reads it from (`self.n_head`)."""

    @property
    def tensors(self) -> dict[str, str]:
        return {
            line.targets[0]: access(self.tree, line.member) for line in self.cls.first.lines if line.expression == "{self}" and line.member
        }


def stored(cls: Class, sites: dict[tuple[str, ...], int], tree: Tree) -> dict[str, str]:
    """The parameters forward reads, each kept as an attribute named after it (apart from the members'
    names, the flags' and nn.Module's own)."""
    read: list[str] = []
    for line in cls.first.lines:
        for offset in range(len(line.values)):
            formula = cls.formulas.get(sites[line.targets] + offset)
            read += sorted(formula.names) if formula is not None else []
    taken = {*(child.attribute for child in tree.children.values()), *tree.children, *cls.flags.values(), *MODULE_ATTRIBUTES}
    attributes: dict[str, str] = {}
    for name in (p.name for p in cls.parameters if p.name in read):
        attributes[name] = numbered(name, taken)
        taken.add(attributes[name])
    return attributes


def variable_names(cls: Class, inputs: list[str], renames: dict[str, str], ops: dict[str, str], avoid: frozenset[str]) -> dict[str, str]:
    """A Python name for each value of forward, none of them in `avoid` (see `namespace`): inputs by
    the block's names, values by their ids (an id that is no name by its op's)."""
    names: dict[str, str] = {}
    taken = set(avoid)

    def give(token: str, wanted: str) -> None:
        name = python_name(wanted, avoid, ops.get(token, "x"))
        name = numbered(name, taken)
        taken.add(name)
        names[token] = name

    for index, name in enumerate(inputs):
        give(f"@{index}", name)
    for line in cls.first.lines:
        for target in line.targets:
            wanted = renames.get(target, token_path(target))
            give(target, wanted.rpartition(".")[2] if wanted.rpartition(".")[2][:1].isalpha() else wanted)
    return names


def forward_lines(body: Body) -> list[str]:
    instance = body.cls.first
    returned = [instance.token(ref) for ref in instance.outputs]
    read = {token for line in instance.lines for token, _ in line.reads} | {token for token, _ in returned}
    tensors = body.tensors
    lines: list[str] = []
    index = 0
    while index < len(instance.lines):
        unit = top(line_path(instance.lines[index]))
        if unit not in body.cls.flags:
            lines += _statement(body, tensors, read, index)
            index += 1
            continue
        end = index
        while end < len(instance.lines) and top(line_path(instance.lines[end])) == unit:
            end += 1
        lines += _optional_lines(body, tensors, read, index, end, unit)
        index = end
    lines.append(f"return {', '.join(_value(body.names, token, pick, tensors) for token, pick in returned)}")
    return lines


def _statement(body: Body, tensors: dict[str, str], read: set[str], index: int) -> list[str]:
    line = body.cls.first.lines[index]
    if line.expression == "{self}" or (not line.targets and not line.reads):
        return []  # a learnable tensor is read where it is used; a block without inputs or outputs is not called
    expression, comment = _expression(body, tensors, line), body.cls.comments[line.targets]
    if not any(target in read for target in line.targets):
        return [f"{expression}  {comment}"]
    return [f"{', '.join(body.names[target] for target in line.targets)} = {expression}  {comment}"]


def _expression(body: Body, tensors: dict[str, str], line: Line) -> str:
    reads = [_value(body.names, token, pick, tensors) for token, pick in line.reads]
    values = []
    for offset, value in enumerate(line.values):
        formula = body.cls.formulas.get(body.sites.get(line.targets, -1) + offset) if line.values else None
        values.append(
            formula.renamed({name: f"self.{attribute}" for name, attribute in body.stored.items()}) if formula else code.literal(value)
        )
    return code.fill(line.expression, values, reads, access(body.tree, line.member) if line.member else "")


def _optional_lines(body: Body, tensors: dict[str, str], read: set[str], start: int, end: int, unit: str) -> list[str]:
    """An optional layer's lines, run where the instance has it; elsewhere its values are its input
    (an if/else block, as torchvision writes its optional `downsample`)."""
    lines = body.cls.first.lines
    outside = {token for line in lines[:start] + lines[end:] for token, _ in line.reads} | (read - _read_within(lines, start, end))
    exported = [target for target in (t for line in lines[start:end] for t in line.targets) if target in outside]
    passed = _value(body.names, *lines[start].reads[0], tensors)
    test = f"self.{unit} is not None" if unit in body.tree.children else f"self.{body.cls.flags[unit]}"
    text = [f"if {test}:"]
    for index in range(start, end):
        text += [f"    {statement}" for statement in _statement(body, tensors, read, index)]
    return text + (["else:", *(f"    {body.names[target]} = {passed}" for target in exported)] if exported else [])


def _read_within(lines: list[Line], start: int, end: int) -> set[str]:
    return {token for line in lines[start:end] for token, _ in line.reads}


def _value(names: dict[str, str], token: str, pick: int | None, tensors: dict[str, str]) -> str:
    name = tensors.get(token) or names[token]
    return name if pick is None else f"{name}[{pick}]"


def input_names(cls: Class, document: Document, typed: TypedGraph) -> list[str]:
    count = len(cls.first.inputs)
    if cls.block is None:
        return list(typed.inputs)
    declared = document.data.get("blocks", {}).get(cls.block, {}).get("inputs", ["input"])
    return [str(name) for name in declared] if len(declared) == count else [f"x{i}" for i in range(count)]


def type_hint(value: Any) -> str:
    """`: int` for a parameter whose value is `value`; nothing for a value of another type (None, a
    dtype), whose hint would need an import the file does not have."""
    if isinstance(value, (bool, int, float, str)):
        return f": {type(value).__name__}"
    if isinstance(value, (tuple, list)) and value and len({type(v) for v in value}) == 1 and isinstance(value[0], (bool, int, float, str)):
        item = type(value[0]).__name__
        return f": list[{item}]" if isinstance(value, list) else f": tuple[{item}, ...]"
    if isinstance(value, (tuple, list)):
        return f": {type(value).__name__}"
    return ""
