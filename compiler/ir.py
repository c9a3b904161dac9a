"""The graph IR handed from resolve to infer to emit: small frozen dataclasses, plus a lint."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx

from .diagnostics import Span
from .expr import Expression
from .ops import TensorType


@dataclass(frozen=True)
class Deferred:
    """A value that depends on inferred shapes (`channels(input) != $width`); infer evaluates it.

    `refs` maps each layer name used in the expression to the graph node it denotes.
    """

    expr: Expression
    params: Mapping[str, Any]
    refs: Mapping[str, str]
    span: Span


@dataclass(frozen=True)
class Node:
    """One op applied in the graph. `name` is its module path (`layer1.0.conv1`), unique in the graph."""

    name: str
    op: str
    args: Mapping[str, Any]
    inputs: tuple[str, ...]
    span: Span
    arg_spans: Mapping[str, Span]
    activation: str | None = None
    guards: tuple[Deferred, ...] = ()


@dataclass(frozen=True)
class Graph:
    """A resolved model: nodes in topological order, typed inputs, and the output node names."""

    name: str
    inputs: Mapping[str, TensorType]
    nodes: Mapping[str, Node]
    outputs: tuple[str, ...]
    dag: nx.DiGraph

    def lint(self) -> None:
        """Assert the IR's invariants; a failure is a compiler bug, never a spec error."""
        seen = set(self.inputs)
        for name, node in self.nodes.items():
            assert name == node.name and name not in self.inputs, f"bad node name {name}"
            assert all(src in seen for src in node.inputs), f"{name} reads a node defined after it"
            seen.add(name)
        assert all(out in seen for out in self.outputs), "an output names no node"
        assert nx.is_directed_acyclic_graph(self.dag), "graph has a cycle"
