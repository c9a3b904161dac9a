"""What every step of one inference shares: the graph, the ops, what is typed so far and the
diagnostics; and one op applied at one node."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NoReturn

from ..diagnostics import Diagnostic, Span
from ..ir import Graph, Node, Ref, TypedNode
from ..ops import Call, OpDef, Registry


class Failed(Exception):
    """The node cannot be typed (its error is reported); the nodes that read it are not typed either."""


@dataclass(frozen=True)
class Context:
    """One inference's inputs and the accumulators its steps add to."""

    graph: Graph
    registry: Registry
    diagnostics: list[Diagnostic] = field(default_factory=list)
    typed: dict[str, TypedNode] = field(default_factory=dict)
    passed: dict[str, Ref] = field(default_factory=dict)
    """Skipped nodes: the value each passes through."""
    absent: dict[str, Span] = field(default_factory=dict)
    """Skipped learnable tensors (nothing to pass through): the condition that skipped each."""
    failed: set[str] = field(default_factory=set)
    memo: dict[int, Any] = field(default_factory=dict)
    """Each shape-reading value's result, by the value's id: a guard shared by many nodes is decided once."""
    gaps: dict[Span, tuple[str, int]] = field(default_factory=dict)
    """Conditions that skipped a layer keeping its position: the first such position of each."""

    def fail(self, code: str, message: str, span: Span, hint: str | None = None) -> NoReturn:
        """Report an error that stops typing the node."""
        self.diagnostics.append(Diagnostic(code, message, span, hint))
        raise Failed


@dataclass(frozen=True)
class Application:
    """An op applied at a node: the node (where errors are reported), the op, and its call."""

    node: Node
    op: OpDef
    call: Call
