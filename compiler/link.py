"""Link: the last step of resolve. Expansion leaves each node's inputs as scoped paths and some paths
as aliases of others (a block's name for its last layer, a skipped layer for its input); linking
follows them to graph nodes, builds the networkx DAG, finds cycles, orders the nodes, and warns
about outputs nobody reads."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import networkx as nx

from .diagnostics import Diagnostic, Severity, Span, did_you_mean
from .ir import Deferred, Graph, Node
from .load import Document
from .ops import TensorType

Source = tuple[str, Span, str]
"""An input as written: its qualified path, where it was written, and the scope prefix it was written in."""


@dataclass
class PendingNode:
    """A node whose inputs (and shape-dependent values' references) are still paths."""

    node: Node
    sources: list[Source]


@dataclass(frozen=True)
class Expansion:
    """What expansion produced, in creation order."""

    document: Document
    inputs: dict[str, TensorType]
    pending: dict[str, PendingNode]
    aliases: dict[str, str]
    defined: dict[str, Span]
    block_outputs: list[tuple[str, str, Span, str]]


def link(expansion: Expansion, outputs: list[str], had_errors: bool) -> tuple[Graph | None, list[Diagnostic]]:
    """The graph (None on errors, or if expansion `had_errors`) and linking's own diagnostics."""
    return _Linker(expansion).run(outputs, had_errors)


class _Linker:
    def __init__(self, expansion: Expansion):
        self.x = expansion
        self.aliases = dict(expansion.aliases)
        self.diagnostics: list[Diagnostic] = []

    def run(self, outputs: list[str], had_errors: bool) -> tuple[Graph | None, list[Diagnostic]]:
        for instance, path, span, prefix in self.x.block_outputs:
            if self._ref(path, span, prefix):
                self.aliases[instance] = path
        nodes = {name: self._node(pending) for name, pending in self.x.pending.items()}
        doc, explicit = self.x.document, "outputs" in self.x.document.data
        output_names = tuple(
            self._ref(ref, doc.span(("outputs", i)) if explicit else doc.span(("layers",)), "") for i, ref in enumerate(outputs)
        )
        if had_errors or any(d.is_error for d in self.diagnostics):
            return None, self.diagnostics
        dag = _dag(self.x.inputs, nodes)
        if not nx.is_directed_acyclic_graph(dag):
            cycle = [edge[0] for edge in nx.find_cycle(dag)]
            message = f"layers form a cycle: {' → '.join([*cycle, cycle[0]])}"
            self.diagnostics.append(Diagnostic("E0308", message, nodes[cycle[0]].span, "a layer cannot depend on its own output"))
            return None, self.diagnostics
        order = {name: i for i, name in enumerate([*self.x.inputs, *nodes])}
        ordered = {name: nodes[name] for name in nx.lexicographical_topological_sort(dag, key=order.get) if name in nodes}
        graph = Graph(doc.data.get("name", "model"), self.x.inputs, ordered, output_names, dag)
        graph.lint()
        self._warn_unused(graph)
        return graph, self.diagnostics

    def _node(self, pending: PendingNode) -> Node:
        node = pending.node
        inputs = tuple(self._ref(path, span, prefix) for path, span, prefix in pending.sources)
        args = {key: self._deferred(value) for key, value in node.args.items()}
        return dataclasses.replace(node, inputs=inputs, args=args, guards=tuple(self._deferred(g) for g in node.guards))

    def _chase(self, path: str) -> str | None:
        seen = set()
        while path in self.aliases and path not in seen:
            seen.add(path)
            path = self.aliases[path]
        return path if path in self.x.pending or path in self.x.inputs else None

    def _ref(self, path: str, span: Span, prefix: str) -> str | None:
        target = self._chase(path)
        if target is None:
            local = path[len(prefix) :]
            candidates = [p[len(prefix) :] for p in self.x.defined if p.startswith(prefix)]
            self.diagnostics.append(Diagnostic("E0303", f"unknown reference '{local}'", span, did_you_mean(local, candidates)))
        return target

    def _deferred(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self._deferred(v) for v in value]
        if not isinstance(value, Deferred):
            return value
        refs = {name: self._ref(path, value.span, path[: len(path) - len(name)]) for name, path in value.refs.items()}
        return dataclasses.replace(value, refs=refs)

    def _warn_unused(self, graph: Graph) -> None:
        for name in [*graph.inputs, *graph.nodes]:
            if graph.dag.out_degree(name) == 0 and name not in graph.outputs:
                node = graph.nodes.get(name)
                span = node.span if node else self.x.document.key_span(("inputs", name))
                what = "input" if node is None else "output of layer"
                self.diagnostics.append(Diagnostic("W0301", f"{what} '{name}' is never used", span, severity=Severity.WARNING))


def _dag(inputs: dict[str, TensorType], nodes: dict[str, Node]) -> nx.DiGraph:
    """Data edges, plus edges from the layers whose shapes a node's conditions or values read."""
    dag = nx.DiGraph()
    dag.add_nodes_from(inputs)
    dag.add_nodes_from(nodes)
    dag.add_edges_from((src, name) for name, node in nodes.items() for src in node.inputs)
    dag.add_edges_from((ref, name) for name, node in nodes.items() for ref in _deferred_refs(node))
    return dag


def _deferred_refs(node: Node) -> list[str]:
    values = [*node.guards, *node.args.values()]
    values += [v for value in node.args.values() if isinstance(value, list) for v in value]
    return [ref for value in values if isinstance(value, Deferred) for ref in value.refs.values()]
