"""Classes as Python source: `__init__` builds the members under the spec's names (containers become
nn.Sequential, nn.ModuleList or plain nn.Module namespaces), `forward` reads as hand-written code with
the shape of each value in a comment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..ir import TypedGraph
from ..load import Document
from . import code
from .classes import Class, member_arguments
from .instances import Instance, Line, Member, identifier
from .namespace import numbered, python_name
from .optional import line_path, top


@dataclass
class Tree:
    """The members of a class by path: a leaf holds a member; any other node is a container."""

    member: Member | None = None
    slot: int = 0
    children: dict[str, Tree] = field(default_factory=dict)
    kind: str = "plain"
    """For a container: 'sequential', 'list' (nn.ModuleList) or 'plain' (an nn.Module namespace)."""


def members_tree(cls: Class, of: dict[int, Class]) -> Tree:
    root = Tree()
    for member in sorted(cls.first.members, key=lambda m: m.order):
        node = root
        for part in member.path.split("."):
            node = node.children.setdefault(part, Tree())
        node.member, node.slot = member, _slot_of(cls.first, member, of)
    _kinds(root, top=True)
    return root


def _slot_of(instance: Instance, wanted: Member, of: dict[int, Class]) -> int:
    slot = 0
    for member in instance.members:
        if member is wanted:
            return slot
        slot += len(member_arguments(member, of))
    raise AssertionError


def _kinds(tree: Tree, top: bool) -> None:
    for child in tree.children.values():
        if child.member is None:
            _kinds(child, top=False)
    numbered = list(tree.children) == [str(i) for i in range(len(tree.children))]
    holds_tensors = any(c.member is not None and c.member.text is not None for c in tree.children.values())
    holds_namespaces = any(c.member is None and c.kind == "plain" for c in tree.children.values())  # no list item
    tree.kind = "list" if numbered and not holds_tensors and not holds_namespaces and not top else "plain"


def collapse(cls: Class, tree: Tree) -> dict[str, str]:
    """Turn numbered containers that are chains into nn.Sequential; returns token renames."""
    renames: dict[str, str] = {}
    _collapse(tree, "", cls, renames)
    return renames


def _collapse(tree: Tree, prefix: str, cls: Class, renames: dict[str, str]) -> None:
    for name, child in tree.children.items():
        path = prefix + name
        if child.member is not None:
            continue
        _collapse(child, path + ".", cls, renames)
        if child.kind == "list" and all(c.member is not None for c in child.children.values()):
            chain = _chain(path, len(child.children), cls.first.lines, cls.first)
            if chain is not None:
                child.kind = "sequential"
                start, end = chain
                for instance in cls.instances:
                    lines = instance.lines
                    last, absent = lines[end - 1], all(line.absent for line in lines[start:end])
                    lines[start:end] = [Line(last.targets, "{self}({0})", lines[start].reads, path, last.shapes, absent=absent)]
                renames[cls.first.lines[start].targets[0]] = path


def _chain(path: str, count: int, lines: list[Line], instance: Instance) -> tuple[int, int] | None:
    """Where the lines under `path` call its items one after the other and nothing else reads between."""
    under = [i for i, line in enumerate(lines) if _line_path(line) == path or _line_path(line).startswith(path + ".")]
    if len(under) != count or under != list(range(under[0], under[0] + count)):
        return None
    outputs = {instance.token(ref)[0] for ref in instance.outputs}
    for position, index in enumerate(under):
        line = lines[index]
        if line.member != f"{path}.{position}" or line.expression != "{self}({0})" or len(line.targets) != 1 or line.tuple_valued:
            return None
        if position and line.reads != ((lines[index - 1].targets[0], None),):
            return None
        if position == 0 and (len(line.reads) != 1 or line.reads[0][1] is not None):
            return None
        if position < count - 1:
            token = line.targets[0]
            readers = [other for other in lines if any(read[0] == token for read in other.reads)]
            if len(readers) != 1 or token in outputs:
                return None
    return under[0], under[0] + count


def _line_path(line: Line) -> str:
    return line.member or _token_path(line.targets[0])


def _token_path(token: str) -> str:
    return token.partition(":")[0]


def access(tree: Tree, path: str) -> str:
    """`self.layer1[0].conv1` for the member at `layer1.0.conv1`."""
    text, node = "self", tree
    for part in path.split("."):
        if node.kind in ("list", "sequential"):
            text += f"[{part}]"
        else:
            text = f"{text}.{part}" if identifier(part) else f"getattr({text}, {code.literal(part)})"
        node = node.children[part]
    return text


def constructor(tree: Tree, cls: Class, of: dict[int, Class]) -> str:
    """The expression that builds a leaf or a list container."""
    if tree.member is None:
        items = ", ".join(constructor(child, cls, of) for child in tree.children.values())
        return f"nn.Sequential({items})" if tree.kind == "sequential" else f"nn.ModuleList([{items}])"
    member = tree.member
    if member.text is not None:
        return member.text
    arguments = member_arguments(member, of)
    callee = of[id(member.child)].name if member.child is not None else member.callee
    parts = []
    for offset, (name, value, positional) in enumerate(arguments):
        if tree.slot + offset not in cls.slots and code.is_default(member.defaults, name, value):
            continue
        text = cls.slots.get(tree.slot + offset) or code.literal(value)
        parts.append(text if positional else f"{name}={text}")
    return f"{callee}({', '.join(parts)})"


def init_lines(tree: Tree, cls: Class, of: dict[int, Class], prefix: str = "self") -> list[str]:
    lines = []
    if prefix == "self":
        lines += [f"self.{cls.flags[unit]} = {cls.flags[unit]}" for unit in cls.units if unit not in tree.children]
    for name, child in tree.children.items():
        if prefix == "self" and name in cls.flags:
            lines += _optional_member(name, child, cls, of)
            continue
        plain = child.member is None and child.kind == "plain"
        value = "nn.Module()" if plain else constructor(child, cls, of)
        if identifier(name):
            lines.append(f"{prefix}.{name} = {value}")
        elif child.member is not None and child.member.text is not None:
            lines.append(f"{prefix}.register_parameter({code.literal(name)}, {value})")
        else:
            lines.append(f"{prefix}.add_module({code.literal(name)}, {value})")
        if plain:
            lines += init_lines(child, cls, of, access_of_child(prefix, name))
    return lines


def _optional_member(name: str, child: Tree, cls: Class, of: dict[int, Class]) -> list[str]:
    """`self.downsample = nn.Sequential(...) if downsample else None`, as torchvision writes it."""
    flag = cls.flags[name]
    if child.member is not None or child.kind != "plain":
        return [f"self.{name} = {constructor(child, cls, of)} if {flag} else None"]
    inner = init_lines(Tree(children={name: child}), cls, of, "self_")
    body = [line.replace("self_.", "self.", 1) for line in inner]
    return [f"if {flag}:", *(f"    {line}" for line in body), "else:", f"    self.{name} = None"]


def access_of_child(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if identifier(name) else f"getattr({prefix}, {code.literal(name)})"


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
            wanted = renames.get(target, _token_path(target))
            give(target, wanted.rpartition(".")[2] if wanted.rpartition(".")[2][:1].isalpha() else wanted)
    return names


def shape_comment(cls: Class, index: int) -> str:
    """`# (B, 64, 56, 56)`: each dimension as all instances have it, a parameter's name where it
    follows one, `*` where instances differ otherwise."""
    pieces = []
    present = [i for i, instance in enumerate(cls.instances) if not instance.lines[index].absent]
    per_instance = [cls.instances[i].lines[index].shapes for i in present]
    if len({len(shapes) for shapes in per_instance}) > 1:
        return "# (the number of pieces varies by call)"
    for output in range(len(per_instance[0])):
        types = [shapes[output] for shapes in per_instance]
        if len({len(t.shape) for t in types}) > 1:
            pieces.append("(rank varies by call)")
            continue
        dims = [_dim(cls, [t.shape[d] for t in types], present) for d in range(len(types[0].shape))]
        if types[0].batched:
            dims.insert(0, "B")
        pieces.append(f"({', '.join(dims)}{',' if len(dims) == 1 else ''})")
    return "# " + ", ".join(pieces)


def _dim(cls: Class, values: list[Any], present: list[int]) -> str:
    if all(repr(v) == repr(values[0]) for v in values):
        return str(values[0])
    for parameter in cls.parameters:
        if repr([parameter.values[i] for i in present]) == repr(values):
            return parameter.name
    return "*"


def forward_lines(cls: Class, tree: Tree, names: dict[str, str]) -> list[str]:
    instance = cls.first
    returned = [instance.token(ref) for ref in instance.outputs]
    tensors = {line.targets[0]: access(tree, line.member) for line in instance.lines if line.expression == "{self}"}
    read = {token for line in instance.lines for token, _ in line.reads} | {token for token, _ in returned}
    body: list[str] = []
    index = 0
    while index < len(instance.lines):
        unit = top(line_path(instance.lines[index]))
        if unit not in cls.flags:
            body += _statement(cls, tree, names, tensors, read, index)
            index += 1
            continue
        end = index
        while end < len(instance.lines) and top(line_path(instance.lines[end])) == unit:
            end += 1
        body += _optional_lines(cls, tree, names, tensors, read, index, end, unit)
        index = end
    body.append(f"return {', '.join(_value(names, token, pick, tensors) for token, pick in returned)}")
    return body


def _statement(cls: Class, tree: Tree, names: dict[str, str], tensors: dict[str, str], read: set[str], index: int) -> list[str]:
    line = cls.first.lines[index]
    if line.expression == "{self}" or (not line.targets and not line.reads):
        return []  # a learnable tensor is read where it is used; a block without inputs or outputs is not called
    expression, comment = _expression(cls, tree, names, tensors, index), shape_comment(cls, index)
    if not any(target in read for target in line.targets):
        return [f"{expression}  {comment}"]
    return [f"{', '.join(names[target] for target in line.targets)} = {expression}  {comment}"]


def _expression(cls: Class, tree: Tree, names: dict[str, str], tensors: dict[str, str], index: int) -> str:
    line = cls.first.lines[index]
    values = [_value(names, token, pick, tensors) for token, pick in line.reads]
    return line.expression.replace("{self}", access(tree, line.member) if line.member else "").format(*values)


def _optional_lines(cls: Class, tree: Tree, names: dict, tensors: dict, read: set[str], start: int, end: int, unit: str) -> list[str]:
    """An optional layer's lines, run where the instance has it; elsewhere its values are its input
    (an if/else block, as torchvision writes its optional `downsample`)."""
    lines = cls.first.lines
    outside = {token for line in lines[:start] + lines[end:] for token, _ in line.reads} | (read - _read_within(lines, start, end))
    exported = [target for target in (t for line in lines[start:end] for t in line.targets) if target in outside]
    passed = _value(names, *lines[start].reads[0], tensors)
    test = f"self.{unit} is not None" if unit in tree.children else f"self.{cls.flags[unit]}"
    body = [f"if {test}:"]
    for index in range(start, end):
        body += [f"    {text}" for text in _statement(cls, tree, names, tensors, read, index)]
    return body + (["else:", *(f"    {names[target]} = {passed}" for target in exported)] if exported else [])


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
    if isinstance(value, (bool, int, float, str, tuple, list)):
        return f": {type(value).__name__}"
    return ""
