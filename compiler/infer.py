"""Infer: walk the graph in topological order, decide conditions, evaluate shape-dependent values,
apply each op's shape rule, and count parameters and multiply-accumulates. Pure Python."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import expr
from .diagnostics import Diagnostic, Span, sort_key
from .ir import Deferred, Graph, Node
from .ops import Call, OpDef, Registry, ShapeError, TensorType
from .values import check_value


@dataclass(frozen=True)
class TypedNode:
    """A node that is present in the model, with every value concrete and its costs known."""

    node: Node
    args: Mapping[str, Any]
    inputs: tuple[str, ...]
    input_types: tuple[TensorType, ...]
    output: TensorType
    params: int
    macs: int

    @property
    def call(self) -> Call:
        return Call(self.args, self.input_types)


@dataclass(frozen=True)
class TypedGraph:
    """The model as emit sees it: present nodes only (skipped ones pass their input through)."""

    name: str
    inputs: Mapping[str, TensorType]
    nodes: Mapping[str, TypedNode]
    outputs: tuple[str, ...]

    def type_of(self, name: str) -> TensorType:
        return self.inputs[name] if name in self.inputs else self.nodes[name].output

    @property
    def total_params(self) -> int:
        return sum(n.params for n in self.nodes.values())

    @property
    def total_macs(self) -> int:
        return sum(n.macs for n in self.nodes.values())


def infer(graph: Graph, registry: Registry) -> tuple[TypedGraph | None, list[Diagnostic]]:
    """Type every node; returns the typed graph (None if there are errors) and the diagnostics."""
    return _Inference(graph, registry).run()


class _Failed(Exception):
    pass


class _Inference:
    def __init__(self, graph: Graph, registry: Registry):
        self.graph = graph
        self.registry = registry
        self.diagnostics: list[Diagnostic] = []
        self.producer: dict[str, str | None] = {name: name for name in graph.inputs}
        self.types: dict[str, TensorType] = dict(graph.inputs)
        self.typed: dict[str, TypedNode] = {}
        self.guards: dict[int, bool] = {}

    def run(self) -> tuple[TypedGraph | None, list[Diagnostic]]:
        for name, node in self.graph.nodes.items():
            self.producer[name] = self._visit(node)
        outputs = tuple(self.producer[name] for name in self.graph.outputs)
        diagnostics = sorted(set(self.diagnostics), key=sort_key)
        if any(d.is_error for d in diagnostics) or None in outputs:
            return None, diagnostics
        return TypedGraph(self.graph.name, self.graph.inputs, self.typed, outputs), diagnostics

    def _visit(self, node: Node) -> str | None:
        """The name of the node whose value `node` holds: itself, its input if skipped, None if failed."""
        inputs = tuple(self.producer[src] for src in node.inputs)
        if None in inputs:
            return None
        try:
            if not all(self._guard(node, guard) for guard in node.guards):
                return inputs[0]
            args = {key: self._value(node, key, value) for key, value in node.args.items()}
            op = self.registry.get(node.op)
            call = Call(args, tuple(self.types[i] for i in inputs))
            output = self._apply(node, op, call)
            if node.activation:
                output = self._apply(
                    node, self.registry.get(node.activation), Call(_defaults(self.registry.get(node.activation)), (output,))
                )
        except _Failed:
            return None
        self.types[node.name] = output
        self.typed[node.name] = TypedNode(node, args, inputs, call.inputs, output, op.count_params(call), op.count_macs(call, output))
        return node.name

    def _apply(self, node: Node, op: OpDef, call: Call) -> TensorType:
        try:
            return op.infer(call)
        except ShapeError as error:
            span = node.arg_spans.get(error.param) if error.param else None
            self._fail("E0401", f"layer '{node.name}' ({op.name}): {error.message}", span or node.span)

    def _shape_of(self, deferred: Deferred, name: str) -> tuple[int, ...]:
        producer = self.producer.get(deferred.refs[name])
        if producer is None:
            raise _Failed
        return self.types[producer].shape

    def _evaluate(self, node: Node, deferred: Deferred) -> Any:
        try:
            return expr.evaluate(deferred.expr, deferred.params, lambda name: self._shape_of(deferred, name))
        except expr.ExprError as error:
            self._fail("E0402", f"layer '{node.name}' ({node.op}): {error}", deferred.span)

    def _guard(self, node: Node, guard: Deferred) -> bool:
        """Guards are shared by every node of a conditional group: decide each once."""
        if id(guard) not in self.guards:
            self.guards[id(guard)] = bool(self._evaluate(node, guard))
        return self.guards[id(guard)]

    def _value(self, node: Node, key: str, value: Any) -> Any:
        if isinstance(value, list):
            value = [self._evaluate(node, v) if isinstance(v, Deferred) else v for v in value]
        elif isinstance(value, Deferred):
            value = self._evaluate(node, value)
        else:
            return value
        op = self.registry.get(node.op)
        problem = check_value(op.param_index[key], value)
        if problem:
            self._fail("E0402", f"layer '{node.name}' ({node.op}): '{key}' {problem}", node.arg_spans.get(key, node.span))
        return value

    def _fail(self, code: str, message: str, span: Span) -> None:
        self.diagnostics.append(Diagnostic(code, message, span))
        raise _Failed


def _defaults(op: OpDef) -> dict[str, Any]:
    return {p.name: p.default for p in op.params}
