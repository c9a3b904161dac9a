"""The model cut into block instances, each written as the members its `__init__` makes and the lines of
its `forward`, in tokens relative to the instance, so instances of one block can be compared.

A node belongs to the innermost block call around it (groups and repeats are namespaces inside it); the
root instance holds the rest. A nested block instance is a member of its parent, called by one line.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from .. import initializers
from ..emit import resolve_target
from ..ir import Kind, Ref, TypedGraph, TypedNode
from ..ops import Call, ModuleEmit, OpDef, Registry, TensorEmit
from . import code

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass
class Member:
    """A module or learnable tensor its instance's `__init__` makes, at `path` relative to the instance."""

    path: str
    order: int
    callee: str
    args: list[tuple[str, Any, bool]]
    """(name, value, passed by position) per constructor argument."""
    node: TypedNode | None = None
    child: Instance | None = None
    text: str | None = None
    """For a learnable tensor: its constructor expression, a template of `args` (see `code.fill`)."""
    sources: dict[str, str] = field(default_factory=dict)
    """Constructor argument → the spec argument it is made from (where one alone makes it)."""
    absent: bool = False
    """An optional member this instance lacks (see `optional`)."""
    defaults: dict[str, Any] = field(default_factory=dict)
    """The constructor's defaults: an argument every instance gives its default is left out."""
    stateless: bool = False
    """A module (a block call: every member of it) that holds no parameter or buffer."""

    @property
    def shape(self) -> tuple:
        """What must agree between instances written by one class (constructor argument values may differ)."""
        values = repr([value for _, value, _ in self.args]) if self.text is not None else None
        return (*self.form, values)

    @property
    def form(self) -> tuple:
        """What must agree between builds of the spec with other parameter values (no value may differ)."""
        return (self.path, self.callee, tuple((name, positional) for name, _, positional in self.args), self.text)


@dataclass
class Line:
    """One statement of `forward`: `targets = expression`, reading `reads` (token, pick) in `{0}`, `{1}`…
    and writing `values` in `{v0}`, `{v1}`…; `{self}` stands for the attribute path of its member."""

    targets: tuple[str, ...]
    expression: str
    reads: tuple[tuple[str, int | None], ...]
    member: str | None
    shapes: tuple[Any, ...]
    tuple_valued: bool = False
    absent: bool = False
    op: str = ""
    """The op (or the block, for a block call) that the line runs."""
    values: tuple[Any, ...] = ()
    node: TypedNode | None = None

    @property
    def shape(self) -> tuple:
        """What must agree between instances written by one class."""
        return (*self.form, repr(self.values))

    @property
    def form(self) -> tuple:
        """What must agree between builds of the spec with other parameter values."""
        return (self.targets, self.expression, self.reads, self.member, self.tuple_valued)


@dataclass
class Instance:
    path: str
    block: str | None
    nodes: list[TypedNode] = field(default_factory=list)
    children: list[Instance] = field(default_factory=list)
    members: list[Member] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    inputs: list[Ref] = field(default_factory=list)
    outputs: list[Ref] = field(default_factory=list)
    order: int = 0
    produced: dict[Ref, tuple[str, int | None]] = field(default_factory=dict)
    """Each value the instance's forward holds: its token and the item picked from it."""
    absent: set[str] = field(default_factory=set)
    """The optional layers this instance lacks, once padded to its class's template."""
    original: tuple[list[Member], list[Line]] | None = None

    def token(self, ref: Ref) -> tuple[str, int | None]:
        return _token(self, ref, self.produced)

    def relative(self, name: str) -> str:
        return name[len(self.path) + 1 :] if self.path else name

    def owns(self, name: str) -> bool:
        return not self.path or name.startswith(self.path + ".")


def cut(typed: TypedGraph) -> Instance:
    """The root instance; every block instance hangs below it."""
    root = Instance("", None)
    by_path: dict[str, Instance] = {"": root}
    for node in typed.layers.values():
        parent = root
        for scope in node.node.scopes:
            if scope.block is None:
                continue
            if scope.path not in by_path:
                child = Instance(scope.path, scope.block, order=node.node.order)
                by_path[scope.path] = child
                parent.children.append(child)
            parent = by_path[scope.path]
        parent.nodes.append(node)
    return root


def describe(instance: Instance, typed: TypedGraph, registry: Registry, readers: dict[str, set[str]] | None = None) -> None:
    """Fill members, lines, inputs and outputs of the instance and of every instance below it
    (`readers`: each node's readers, found here when not given)."""
    readers = _readers(typed) if readers is None else readers
    for child in instance.children:
        describe(child, typed, registry, readers)
    inside = _names_inside(instance)
    produced = instance.produced
    if not instance.path:
        instance.inputs = [Ref(name) for name in typed.inputs]
    for step in _steps(instance, typed):
        if isinstance(step, Instance):
            _child_line(instance, step, produced)
        else:
            _node_line(instance, step, registry, produced)
    seen: set[tuple[str, int | None]] = set()
    for ref, token in produced.items():
        if token not in seen and any(reader not in inside for reader in readers.get(ref.node, ())):
            seen.add(token)
            instance.outputs.append(ref)
    if not instance.path:
        instance.outputs = list(typed.output.inputs)


def _steps(instance: Instance, typed: TypedGraph) -> list[TypedNode | Instance]:
    """The instance's own nodes and its children in an order that runs: each after what it reads."""
    position = {name: index for index, name in enumerate(typed.nodes)}
    steps: list[TypedNode | Instance] = [*instance.nodes, *instance.children]
    owner: dict[str, int] = {}
    reads: list[set[str]] = []
    for index, step in enumerate(steps):
        nodes = list(_all_nodes(step)) if isinstance(step, Instance) else [step]
        owner.update((node.name, index) for node in nodes)
        reads.append({ref.node for node in nodes for ref in node.inputs})
    graph = nx.DiGraph()
    graph.add_nodes_from(range(len(steps)))
    for index, names in enumerate(reads):
        graph.add_edges_from((owner[name], index) for name in names if name in owner and owner[name] != index)
    first = [min(position[node.name] for node in (_all_nodes(s) if isinstance(s, Instance) else [s])) for s in steps]
    try:
        order = list(nx.lexicographical_topological_sort(graph, key=lambda index: first[index]))
    except nx.NetworkXUnfeasible:
        raise code.EjectError(f"block instance '{instance.path}' and the layers around it read each other's values") from None
    return [steps[index] for index in order]


def _readers(typed: TypedGraph) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for node in typed.nodes.values():
        for ref in node.inputs:
            found.setdefault(ref.node, set()).add(node.name)
    return found


def _names_inside(instance: Instance) -> set[str]:
    names = {n.name for n in instance.nodes}
    for child in instance.children:
        names |= _names_inside(child)
    return names


def _token(instance: Instance, ref: Ref, produced: dict[Ref, tuple[str, int | None]]) -> tuple[str, int | None]:
    """A value as the instance's forward knows it: one of its own, or an input (`@0`, `@1`…)."""
    if ref in produced:
        return produced[ref]
    whole = Ref(ref.node)
    if whole in produced and produced[whole][1] is None:
        return (produced[whole][0], ref.index)
    if ref not in instance.inputs:
        instance.inputs.append(ref)
    return (f"@{instance.inputs.index(ref)}", None)


def _node_line(instance: Instance, node: TypedNode, registry: Registry, produced: dict) -> None:
    op = registry.get(node.node.op)
    path = instance.relative(node.name)
    if node.kind is Kind.TENSOR:
        assert isinstance(op.emit, TensorEmit)
        text, values = _tensor_text(node)
        args = [(f"v{index}", value, True) for index, value in enumerate(values)]
        instance.members.append(Member(path, node.node.order, "nn.Parameter", args, node, text=text))
        produced[Ref(node.name)] = (path, None)
        instance.lines.append(Line((path,), "{self}", (), path, tuple(node.outputs)))
        return
    reads = tuple(_token(instance, ref, produced) for ref in node.inputs)
    member = None
    if isinstance(op.emit, ModuleEmit):
        args, defaults = code.constructor_args(node, op)
        callee = code.callee(op.emit.target)
        stateless = _stateless(node, op)
        sources = _sources(node, op)
        instance.members.append(Member(path, node.node.order, callee, args, node, sources=sources, defaults=defaults, stateless=stateless))
        member = path
    placeholders = [f"{{{i}}}" for i in range(len(reads))]
    expression, values = code.call_expression(node, op, placeholders, "{self}")
    line = Line((path,), expression, reads, member, tuple(node.outputs), node.tuple_valued, op=node.node.op, values=values, node=node)
    instance.lines.append(line)
    if node.tuple_valued:
        produced[Ref(node.name)] = (path, None)
        for index in range(len(node.outputs)):
            produced[Ref(node.name, index)] = (path, index)
    else:
        produced[Ref(node.name)] = (path, None)
        produced[Ref(node.name, 0)] = (path, None)


def _sources(node: TypedNode, op: OpDef) -> dict[str, str]:
    """Which spec argument makes which constructor argument: each number or flag of the spec is changed
    in turn, and the constructor arguments that change with it are its."""
    assert isinstance(op.emit, ModuleEmit)
    before = op.emit.kwargs(Call(node.args, node.input_types))
    found: dict[str, str] = {}
    for argument, value in node.args.items():
        if isinstance(value, bool):
            changed = not value
        elif isinstance(value, (int, float)):
            changed = value + 1
        else:
            continue
        try:
            after = op.emit.kwargs(Call({**node.args, argument: changed}, node.input_types))
        except Exception:
            continue
        for key, made in after.items():
            if key in before and repr(made) != repr(before[key]):
                found.setdefault(key, argument)
    return found


def _stateless(node: TypedNode, op: OpDef) -> bool:
    """Whether the node's module holds nothing in a state_dict (built once to see its buffers)."""
    assert isinstance(op.emit, ModuleEmit)
    if node.params or node.node.shares:
        return False
    import torch

    try:
        with torch.device("meta"):  # no memory, no initialisation: only its state_dict's keys are read
            module = resolve_target(op.emit.target)(**op.emit.kwargs(Call(node.args, node.input_types)))
    except Exception:  # a plugin's module that cannot be built here: keep its name
        return False
    return not module.state_dict()


def _child_line(instance: Instance, child: Instance, produced: dict) -> None:
    path = instance.relative(child.path)
    reads = tuple(_token(instance, ref, produced) for ref in child.inputs)
    instance.members.append(Member(path, child.order, "", [], child=child, stateless=all(m.stateless for m in child.members)))
    targets = tuple(f"{path}:{i}" for i in range(len(child.outputs)))
    placeholders = ", ".join(f"{{{i}}}" for i in range(len(reads)))
    shapes = tuple(_type_of(child, ref) for ref in child.outputs)
    instance.lines.append(Line(targets, f"{{self}}({placeholders})", reads, path, shapes, op=child.block or ""))
    for target, ref in zip(targets, child.outputs):
        produced[ref] = (target, None)
        if ref.index is None:
            produced[Ref(ref.node, 0)] = (target, None)


def _type_of(instance: Instance, ref: Ref) -> Any:
    for node in _all_nodes(instance):
        if node.name == ref.node:
            return node.outputs[ref.index or 0]
    raise AssertionError(f"{ref} is not inside {instance.path}")


def _all_nodes(instance: Instance):
    yield from instance.nodes
    for child in instance.children:
        yield from _all_nodes(child)


def _tensor_text(node: TypedNode) -> tuple[str, list[Any]]:
    """`nn.Parameter(nn.init.normal_(torch.empty({v0}, {v1}, {v2}), mean={v3}, std={v4}))` and the values
    it writes: the learnable tensor, filled by the call its `init` makes (see compiler.initializers)."""
    initializer, options = initializers.parse(node.args["init"])
    values: list[Any] = list(node.output.shape)
    shape = ", ".join(f"{{v{index}}}" for index in range(len(values)))
    arguments = ""
    for name, value in initializer.call(options).items():
        arguments += f", {name}={{v{len(values)}}}"
        values.append(value)
    trainable = "" if node.args.get("trainable", True) else ", requires_grad=False"
    return f"nn.Parameter({code.callee(initializer.target)}(torch.empty({shape}){arguments}){trainable})", values


def identifier(name: str) -> bool:
    """Whether `name` can be written `self.name`: an identifier that is no keyword and that Python
    would not mangle inside a class (`__x` becomes `_Model__x` there)."""
    return bool(_IDENTIFIER.match(name)) and not keyword.iskeyword(name) and not name.startswith("__")
