"""The graph IR, handed from resolve to infer to emit: a closed set of node kinds, and a lint.

Like torch.fx's opcodes, every node is one of four kinds, and every stage after resolve dispatches on
the kind (and, for calls, on the op), never on how the spec spelled it:

- `input`: a model input, with its declared type (per-sample shape, dtype). No inputs.
- `tensor`: a learnable tensor owned by the model (a class token, a layer scale). Its `state_dict` key
  is its name; `args` hold `shape`, `init` and `trainable`. No inputs; its value has no batch dimension.
- `call`: an op from the registry applied to values. It has one or more outputs; a `Ref` picks one.
  Sugar in the spec (`activation:`) is resolved into calls of its own.
- `output`: exactly one, last, named `OUTPUT`: its inputs are the values the model returns, and
  `args["names"]` their names.

Before infer, a node may carry `guards` (conditions that read inferred shapes) and `Deferred` argument
values. Infer decides both: the typed graph has only present nodes, with concrete values.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .diagnostics import Span
from .dims import Size, symbols_of
from .expr import Expression
from .ops import TensorType

if TYPE_CHECKING:
    import networkx as nx

OUTPUT = "<output>"
ALL = -1
"""`Ref.index` for every output of a node, spelled `x.*` (only in the inputs of a merge)."""


class Kind(str, enum.Enum):
    INPUT = "input"
    TENSOR = "tensor"
    CALL = "call"
    OUTPUT = "output"


@dataclass(frozen=True)
class Ref:
    """A value: output `index` of node `node`; `index` None means the node's only output."""

    node: str
    index: int | None = None

    def __str__(self) -> str:
        return self.node if self.index is None else f"{self.node}.{'*' if self.index == ALL else self.index}"


@dataclass(frozen=True)
class Deferred:
    """A value that depends on inferred shapes (`channels(input) // 2`); infer evaluates it.

    `refs` maps each layer name used in the expression to the value it denotes; `params` may hold
    Deferred values themselves (a block argument that reads shapes), evaluated first.
    """

    expr: Expression
    params: Mapping[str, Any]
    refs: Mapping[str, Any]
    span: Span
    gap: tuple[str, int] | None = None
    """For a layer's own condition: the list (its prefix, `features.`) and the first position its layers
    take there (3), which they keep when it is skipped; a present later position makes a gap (W0401)."""


@dataclass(frozen=True)
class Scope:
    """A block call or group a node sits in: its path (`layer1.0`) and the block's name (None: a group)."""

    path: str
    block: str | None


@dataclass(frozen=True)
class Node:
    """One node of the graph. `name` is unique; for calls and tensors it is the module path
    (`layer1.0.conv1`), and `order` is the position of its layer in the spec (modules are registered in
    it, as in a hand-written `__init__`)."""

    kind: Kind
    name: str
    span: Span
    op: str = ""
    args: Mapping[str, Any] = field(default_factory=dict)
    arg_spans: Mapping[str, Span] = field(default_factory=dict)
    inputs: tuple[Any, ...] = ()
    guards: tuple[Deferred, ...] = ()
    scopes: tuple[Scope, ...] = ()
    order: int = 0
    declared: TensorType | None = None
    shares: Mapping[str, Any] = field(default_factory=dict)
    """Learnable tensors this call takes from another node: attribute name → that node's Ref."""
    numbered: tuple[tuple[str, int], ...] = ()
    """The positions it is named by, outermost first: (a list's prefix, the position there) for itself and
    each enclosing group or block call named by its position (`features.3.0`: ("features.", 3), ("features.3.", 0))."""

    def linked(self, inputs: tuple[Ref, ...], args: Mapping[str, Any], guards: tuple[Deferred, ...], shares: Mapping[str, Any]) -> Node:
        """This node with its references resolved: `dataclasses.replace` without its per-call field
        introspection (link makes one per layer, and large specs have tens of thousands)."""
        copy = object.__new__(Node)
        copy.__dict__.update(self.__dict__, inputs=inputs, args=args, guards=guards, shares=shares)
        return copy


@dataclass(frozen=True)
class Graph:
    """A resolved model: nodes in topological order (inputs first, the output node last), and its
    edges: data edges, plus edges from the values whose shapes a node's conditions or arguments read."""

    name: str
    nodes: Mapping[str, Node]
    edges: tuple[tuple[str, str], ...]

    def of_kind(self, kind: Kind) -> list[Node]:
        return [node for node in self.nodes.values() if node.kind is kind]

    def lint(self) -> None:
        """Check the IR's invariants (raising IRError): a failure is a compiler bug, never a spec error."""
        _lint_order(self.nodes)
        position = {name: index for index, name in enumerate(self.nodes)}
        if any(position[a] >= position[b] for a, b in self.edges):
            raise IRError("an edge runs backwards: the order is not topological")
        for node in self.nodes.values():
            if not all(isinstance(ref, Ref) for ref in node.inputs):
                raise IRError(f"{node.name}: inputs must be Refs")
            if node.kind is Kind.INPUT and node.declared is None:
                raise IRError(f"input {node.name} has no type")


@dataclass(frozen=True)
class TypedNode:
    """A node present in the model, with concrete values, the types it reads and makes, and its costs."""

    node: Node
    args: Mapping[str, Any]
    inputs: tuple[Ref, ...]
    input_types: tuple[TensorType, ...]
    outputs: tuple[TensorType, ...]
    params: int = 0
    cost: Any = 0
    """Its MACs per sample, or a function giving them: with symbolic sizes they are a formula over
    every size, which only `summary` needs, so it is computed when first asked for."""
    tuple_valued: bool = False
    """Its op returns a tuple (`split`, `chunk`), even of one piece: every reader picks from it."""

    @property
    def macs(self) -> Any:
        if callable(self.cost):
            object.__setattr__(self, "cost", self.cost())
        return self.cost

    @property
    def kind(self) -> Kind:
        return self.node.kind

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def output(self) -> TensorType:
        """The only output (of a single-output node)."""
        if len(self.outputs) != 1:
            raise IRError(f"{self.name} has {len(self.outputs)} outputs")
        return self.outputs[0]


@dataclass(frozen=True)
class TypedGraph:
    """The model as emit sees it: present nodes only, in topological order, output node last."""

    name: str
    nodes: Mapping[str, TypedNode]

    @functools.cached_property
    def dag(self) -> nx.DiGraph:
        """The model as a networkx DAG: its present nodes (attributes `kind`, `op`, `shapes`) and data
        edges. Built on first use: `check` does not import networkx."""
        import networkx

        dag = networkx.DiGraph()
        for name, node in self.nodes.items():
            dag.add_node(name, kind=node.kind.value, op=node.node.op, shapes=[t.full_shape for t in node.outputs])
        dag.add_edges_from((ref.node, name) for name, node in self.nodes.items() for ref in node.inputs)
        return dag

    def type_of(self, ref: Ref) -> TensorType:
        return self.nodes[ref.node].outputs[ref.index or 0]

    @property
    def inputs(self) -> dict[str, TensorType]:
        return {n.name: n.output for n in self.nodes.values() if n.kind is Kind.INPUT}

    @property
    def sizes(self) -> dict[str, Size]:
        """The symbolic sizes the inputs declare (empty when every shape is fixed)."""
        found: dict[str, Size] = {}
        for t in self.inputs.values():
            found.update(symbols_of(t.shape))
        return found

    @property
    def layers(self) -> dict[str, TypedNode]:
        """The calls and tensors: what the spec's layers became."""
        return {name: n for name, n in self.nodes.items() if n.kind in (Kind.CALL, Kind.TENSOR)}

    @property
    def output(self) -> TypedNode:
        return self.nodes[OUTPUT]

    @property
    def outputs(self) -> dict[str, Ref]:
        """The returned values by name."""
        return dict(zip(self.output.args["names"], self.output.inputs))

    @property
    def total_params(self) -> int:
        return sum(n.params for n in self.nodes.values())

    @property
    def total_macs(self) -> Any:
        return sum((n.macs for n in self.nodes.values()), 0)

    def lint(self) -> None:
        """Check the typed IR's invariants (raising IRError): order, picks in range, no guards, no open values."""
        _lint_order(self.nodes)
        for node in self.nodes.values():
            if node.node.guards:
                raise IRError(f"{node.name}: guards left after infer")
            if any(isinstance(v, Deferred) for v in node.args.values()):
                raise IRError(f"{node.name}: a Deferred value left")
            if len(node.input_types) != len(node.inputs):
                raise IRError(f"{node.name}: input types do not match inputs")
            for ref, wanted in zip(node.inputs, node.input_types):
                produced = self.nodes[ref.node].outputs
                if ref.index is not None and not 0 <= ref.index < len(produced):
                    raise IRError(f"{node.name}: picks a missing output of {ref.node}")
                if produced[ref.index or 0] != wanted:
                    raise IRError(f"{node.name}: input type of {ref} disagrees")
            if node.kind is not Kind.OUTPUT and not node.outputs:
                raise IRError(f"{node.name}: no outputs")


class IRError(Exception):
    """An invariant of the IR does not hold: a bug in the stage that made it (raised also under `python -O`)."""


def _lint_order(nodes: Mapping[str, Any]) -> None:
    """Names are unique keys; inputs come first and read nothing; every node reads only earlier nodes;
    exactly one output node, last, and nothing reads it."""
    seen: set[str] = set()
    items = list(nodes.items())
    last = items[-1][1] if items else None
    last_kind = (last.node if isinstance(last, TypedNode) else last).kind if last is not None else None
    if last_kind is not Kind.OUTPUT:
        raise IRError("exactly one output node, last")
    for name, item in items:
        node = item.node if isinstance(item, TypedNode) else item
        if name != node.name:
            raise IRError(f"node {name} is stored under another name")
        kind = node.kind
        if kind is Kind.OUTPUT and name != OUTPUT:
            raise IRError("exactly one output node, last")
        if (kind is Kind.INPUT or kind is Kind.TENSOR) and node.inputs:
            raise IRError(f"{name}: a {kind.value} node reads nothing")
        for ref in item.inputs:
            target = ref.node
            if target not in seen:
                raise IRError(f"{name} reads a node defined after it")
            if target == OUTPUT:
                raise IRError(f"{name} reads the output node")
        seen.add(name)
