"""A class's `__init__` as Python source: the members under the spec's names (containers become
nn.Sequential, nn.ModuleList or a `Group` namespace; identical items in a row are built by a loop),
each value a literal or its formula (see `parameters`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..names import MODULE_ATTRIBUTES
from . import code
from .classes import Class, member_arguments
from .instances import Instance, Line, Member, identifier
from .namespace import numbered, python_name

RUN = 3
"""Identical items in a row that a loop builds (a container of identical items: from two)."""


@dataclass
class Tree:
    """The members of a class by path: a leaf holds a member; any other node is a container."""

    member: Member | None = None
    slot: int = 0
    children: dict[str, Tree] = field(default_factory=dict)
    kind: str = "plain"
    """For a container: 'sequential', 'list' (nn.ModuleList) or 'plain' (a `Group` namespace)."""
    attribute: str = ""
    """The attribute it is set as in its container (its path's part, but for a stateless module whose
    part is a number: a name after its op)."""


def members_tree(cls: Class, of: dict[int, Class], avoid: frozenset[str]) -> Tree:
    root = Tree()
    for member in sorted(cls.first.members, key=lambda m: m.order):
        node = root
        for part in member.path.split("."):
            node = node.children.setdefault(part, Tree(attribute=part))
        node.member, node.slot = member, _slot_of(cls.first, member, of)
    _kinds(root, top=True)
    _name_stateless(root, avoid | set(cls.flags.values()))
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


def _name_stateless(tree: Tree, avoid: frozenset[str] | set[str]) -> None:
    """In a namespace, a stateless module numbered by its position (`8`, the spec gave it no id) is set
    as a name after its op: no state_dict key carries its name, so nothing changes but the file."""
    for child in tree.children.values():
        if child.member is None:
            _name_stateless(child, set())
    if tree.kind != "plain":
        return
    taken = {*avoid, *MODULE_ATTRIBUTES, *tree.children}
    for part, child in tree.children.items():
        member = child.member
        if member is not None and member.stateless and not identifier(part):
            named = member.child.block if member.child is not None else member.node.node.op if member.node else None
            child.attribute = numbered(python_name(named or "module", avoid), taken)
            taken.add(child.attribute)


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
        modules = all(c.member is not None and c.member.text is None for c in child.children.values())
        named = child.kind == "plain" and len(child.children) > 1
        if (child.kind == "list" or named) and modules:
            chain = _chain(path, list(child.children), cls.first.lines, cls.first)
            if chain is not None:
                child.kind = "sequential"
                start, end = chain
                for instance in cls.instances:
                    lines = instance.lines
                    last, absent = lines[end - 1], all(line.absent for line in lines[start:end])
                    lines[start:end] = [Line(last.targets, "{self}({0})", lines[start].reads, path, last.shapes, absent=absent)]
                renames[cls.first.lines[start].targets[0]] = path


def _chain(path: str, items: list[str], lines: list[Line], instance: Instance) -> tuple[int, int] | None:
    """Where the lines under `path` call its `items` one after the other and nothing else reads between."""
    count = len(items)
    under = [i for i, line in enumerate(lines) if _line_path(line) == path or _line_path(line).startswith(path + ".")]
    if len(under) != count or under != list(range(under[0], under[0] + count)):
        return None
    outputs = {instance.token(ref)[0] for ref in instance.outputs}
    for position, index in enumerate(under):
        line = lines[index]
        if line.member != f"{path}.{items[position]}" or line.expression != "{self}({0})" or len(line.targets) != 1 or line.tuple_valued:
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
    return line.member or token_path(line.targets[0])


def token_path(token: str) -> str:
    return token.partition(":")[0]


def access(tree: Tree, path: str) -> str:
    """`self.layer1[0].conv1` for the member at `layer1.0.conv1`."""
    text, node = "self", tree
    for part in path.split("."):
        child = node.children[part]
        if node.kind in ("list", "sequential"):
            text += f"[{part}]"
        else:
            text = attribute_of(text, child.attribute)
        node = child
    return text


def attribute_of(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if identifier(name) else f"getattr({prefix}, {code.literal(name)})"


def constructor(tree: Tree, cls: Class, of: dict[int, Class]) -> str:
    """The expression that builds a leaf or a list container."""
    if tree.member is None:
        texts = [constructor(child, cls, of) for child in tree.children.values()]
        if tree.kind == "sequential" and list(tree.children) != [str(i) for i in range(len(texts))]:
            return f"nn.Sequential({_named(list(tree.children), texts)})"
        parts = _items(texts)
        if tree.kind == "sequential":
            return f"nn.Sequential({', '.join(parts)})"
        whole = len(parts) == 1 and parts[0].startswith("*[")
        return f"nn.ModuleList({parts[0][1:]})" if whole else f"nn.ModuleList([{', '.join(parts)}])"
    member = tree.member
    texts, parts = [], []
    for offset, (name, value, positional) in enumerate(member_arguments(member, of)):
        formula = cls.formulas.get(tree.slot + offset)
        texts.append(formula.text if formula is not None else code.literal(value))
        if formula is None and code.is_default(member.defaults, name, value):
            continue
        parts.append(texts[-1] if positional else f"{name}={texts[-1]}")
    if member.text is not None:
        return code.fill(member.text, texts)
    callee = of[id(member.child)].name if member.child is not None else member.callee
    return f"{callee}({', '.join(parts)})"


def _named(names: list[str], texts: list[str]) -> str:
    """`OrderedDict(...)` of a chain whose items have names: built by a loop where the items are
    identical and their names numbered in a row (`f"encoder_layer_{i}"`)."""
    numbered = [re.fullmatch(r"(.*?)(\d+)", name) for name in names]
    if len(set(texts)) == 1 and len(texts) > 1 and all(numbered):
        stems = {match.group(1) for match in numbered if match}
        start = int(numbered[0].group(2)) if numbered[0] else 0
        if len(stems) == 1 and names == [f"{next(iter(stems))}{start + i}" for i in range(len(names))]:
            index = _free(texts[0], ("i", "index", "position"))
            number = index if start == 0 else f"{index} + {start}"
            return f'OrderedDict((f"{next(iter(stems))}{{{number}}}", {texts[0]}) for {index} in range({len(texts)}))'
    return "OrderedDict([" + ", ".join(f"({code.literal(name)}, {text})" for name, text in zip(names, texts)) + "])"


def _free(text: str, names: tuple[str, ...]) -> str:
    """The first of `names` that `text` does not read (a loop's variable must shadow nothing)."""
    return next(name for name in names if not re.search(rf"\b{name}\b", text))


def _items(texts: list[str]) -> list[str]:
    """A container's items, each run of identical ones built by a loop (`*[Block() for _ in range(12)]`):
    a run of RUN or more, or all the items from two."""
    parts: list[str] = []
    index = 0
    while index < len(texts):
        end = index
        while end < len(texts) and texts[end] == texts[index]:
            end += 1
        count = end - index
        looped = count >= RUN or (count == len(texts) and count > 1)
        unused = _free(texts[index], ("_", "_copy", "_repeat"))
        parts += [f"*[{texts[index]} for {unused} in range({count})]"] if looped else texts[index:end]
        index = end
    return parts


def init_lines(tree: Tree, cls: Class, of: dict[int, Class], stored: dict[str, str], prefix: str = "self") -> list[str]:
    """`__init__`'s body after `super().__init__()`: the values forward reads (`stored`: parameter →
    attribute), the flags of optional functions, then the members."""
    lines = [f"self.{attribute} = {name}" for name, attribute in stored.items()] if prefix == "self" else []
    if prefix == "self":
        lines += [f"self.{cls.flags[unit]} = {cls.flags[unit]}" for unit in cls.units if unit not in tree.children]
    for name, child in tree.children.items():
        if prefix == "self" and name in cls.flags:
            lines += _optional_member(name, child, cls, of)
            continue
        plain = child.member is None and child.kind == "plain"
        value = "Group()" if plain else constructor(child, cls, of)
        if identifier(child.attribute):
            lines.append(f"{prefix}.{child.attribute} = {value}")
        elif child.member is not None and child.member.text is not None:
            lines.append(f"{prefix}.register_parameter({code.literal(name)}, {value})")
        else:
            lines.append(f"{prefix}.add_module({code.literal(name)}, {value})")
        if plain:
            lines += init_lines(child, cls, of, {}, attribute_of(prefix, child.attribute))
    return lines


def _optional_member(name: str, child: Tree, cls: Class, of: dict[int, Class]) -> list[str]:
    """`self.downsample = nn.Sequential(...) if downsample else None`, as torchvision writes it."""
    flag = cls.flags[name]
    if child.member is not None or child.kind != "plain":
        return [f"self.{name} = {constructor(child, cls, of)} if {flag} else None"]
    inner = init_lines(Tree(children={name: child}), cls, of, {}, "self_")
    body = [line.replace("self_.", "self.", 1) for line in inner]
    return [f"if {flag}:", *(f"    {line}" for line in body), "else:", f"    self.{name} = None"]


def line_sites(cls: Class, of: dict[int, Class]) -> dict[tuple[str, ...], int]:
    """The site number of each line's first value (by the line's targets), as `parameters` numbers them."""
    site = sum(len(member_arguments(member, of)) for member in cls.first.members)
    found = {}
    for line in cls.first.lines:
        found[line.targets] = site
        site += len(line.values)
    return found
