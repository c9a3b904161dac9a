"""Link: the last step of resolve. Expansion leaves each node's inputs as the paths the spec wrote and
some paths as aliases of others (a block's name for its last layer, a skipped layer for its input, a
layer for its activation); linking follows them to values (`Ref`s, picking outputs with `x.1` and every
copy or output with `x.*`), collects the edges, orders the nodes (by a sort only where the written order is not
already topological; a cycle is found there), and warns about values nobody reads."""

from __future__ import annotations

import dataclasses
import heapq
from dataclasses import dataclass, field
from typing import Any

from .diagnostics import Diagnostic, Severity, Span, did_you_mean
from .ir import ALL, OUTPUT, Deferred, Graph, Kind, Node, Ref
from .load import Document
from .ops import TensorType


@dataclass(frozen=True)
class Source:
    """An input as written: its qualified lookup path, where it was written, and the lookup prefix of
    the list it was written in."""

    path: str
    span: Span
    lookup: str


@dataclass
class PendingNode:
    """A node whose inputs (and shape-reading values' references) are still paths."""

    node: Node
    sources: list[Source | Ref]
    shares: dict[str, Source] = field(default_factory=dict)


@dataclass
class Expansion:
    """What expansion produced, in creation order."""

    document: Document
    inputs: dict[str, TensorType] = field(default_factory=dict)
    input_spans: dict[str, Span] = field(default_factory=dict)
    pending: dict[str, PendingNode] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    defined: dict[str, Span] = field(default_factory=dict)
    lookups: dict[str, Span] = field(default_factory=dict)
    repeats: dict[str, list[str]] = field(default_factory=dict)
    skipped: set[str] = field(default_factory=set)
    absent: dict[str, Span] = field(default_factory=dict)
    """Learnable tensors skipped by their condition (no input to pass through), with the condition's span."""
    block_outputs: list[Source] = field(default_factory=list)


SKIPPED_TENSOR_HINT = "give the layers that read it the same condition, or read it only where it exists"


class _AliasCycle(Exception):
    """A reference whose aliases lead back to itself."""


def link(expansion: Expansion, name: str, outputs: list[Source], had_errors: bool) -> tuple[Graph | None, list[Diagnostic]]:
    """The graph (None on errors, or if expansion `had_errors`) and linking's own diagnostics."""
    return _Linker(expansion).run(name, outputs, had_errors)


class _Linker:
    def __init__(self, expansion: Expansion):
        self.x = expansion
        self.diagnostics: list[Diagnostic] = []

    def run(self, name: str, outputs: list[Source], had_errors: bool) -> tuple[Graph | None, list[Diagnostic]]:
        for source in self.x.block_outputs:
            self._resolve(source)
        nodes = {n.name: n for n in self._input_nodes()}
        nodes.update((path, self._node(pending)) for path, pending in self.x.pending.items())
        nodes[OUTPUT] = self._output_node(outputs)
        if had_errors or any(d.is_error for d in self.diagnostics):
            return None, self.diagnostics
        edges = tuple(_edges(nodes))
        order = {path: i for i, path in enumerate(nodes)}
        if all(order[source] < order[target] for source, target in edges):
            ordered = nodes  # already in order: the sort below would return it unchanged
        else:
            sorted_paths, cycle = _topological(list(nodes), edges)
            if cycle:
                message = f"layers form a cycle: {' → '.join([*cycle, cycle[0]])}"
                self.diagnostics.append(Diagnostic("E0308", message, nodes[cycle[0]].span, "a layer cannot depend on its own output"))
                return None, self.diagnostics
            ordered = {path: nodes[path] for path in sorted_paths}
        graph = Graph(name, ordered, edges)
        graph.lint()
        self._warn_unused(graph)
        return graph, self.diagnostics

    def _input_nodes(self) -> list[Node]:
        return [Node(Kind.INPUT, path, self.x.input_spans[path], declared=t) for path, t in self.x.inputs.items()]

    def _output_node(self, outputs: list[Source]) -> Node:
        refs: list[Ref] = []
        for source in outputs:
            refs += self._resolve(source) or []
        names = tuple(str(ref) for ref in refs)
        span = outputs[0].span if outputs else self.x.document.span(("layers",))
        return Node(Kind.OUTPUT, OUTPUT, span, args={"names": names}, inputs=tuple(refs), order=len(self.x.pending))

    def _node(self, pending: PendingNode) -> Node:
        node = pending.node
        inputs: list[Ref] = []
        for source in pending.sources:
            inputs += [source] if isinstance(source, Ref) else self._resolve(source) or []
        args = {key: self._deferred(value) for key, value in node.args.items()}
        guards = tuple(self._deferred(g) for g in node.guards)
        shares = {attribute: found[0] for attribute, source in pending.shares.items() if (found := self._resolve(source))}
        return node.linked(tuple(inputs), args, guards, shares)

    def _follow(self, path: str) -> str:
        """Where an alias chain from `path` ends (a node, an input, or a path naming neither)."""
        seen = set()
        while path in self.x.aliases and path not in seen:
            seen.add(path)
            path = self.x.aliases[path]
        return path

    def _passes_through(self, path: str) -> bool:
        """True if the alias chain from `path` crosses a layer skipped by its condition."""
        seen = set()
        while path not in seen:
            if path in self.x.skipped:
                return True
            seen.add(path)
            if path not in self.x.aliases:
                return False
            path = self.x.aliases[path]
        return False

    def _values(self, path: str, visiting: frozenset[str] = frozenset()) -> list[Ref] | None:
        """The values a path denotes: a node, an input, an output of one (`split.1`, `split.*`, possibly
        through aliases such as a block's input), or every copy of a repeat (`m.*`); None if nothing.
        Raises _AliasCycle for a path whose aliases lead back to itself."""
        if path in visiting:
            raise _AliasCycle
        visiting = visiting | {path}
        end = self._follow(path)
        if end in self.x.pending or end in self.x.inputs:
            return [Ref(end)]
        base, _, last = end.rpartition(".")
        if not base or not (last == "*" or last.isdigit()):
            return None
        if last == "*" and base in self.x.repeats:
            copies = [self._values(copy, visiting) for copy in self.x.repeats[base]]
            return None if None in copies else [ref for refs in copies for ref in refs]
        inner = self._values(base, visiting)
        if inner is None or len(inner) != 1 or inner[0].index is not None:
            return None
        return inner if self._passes_through(base) else [Ref(inner[0].node, ALL if last == "*" else int(last))]

    def _resolve(self, source: Source) -> list[Ref] | None:
        """The values a written reference denotes, or None after reporting an unknown reference."""
        local = source.path[len(source.lookup) :]
        if local.isdigit() and source.path not in self.x.defined and source.path not in self.x.aliases:
            self.diagnostics.append(
                Diagnostic("E0303", f"unknown reference '{local}': no layer of this list has position {local}", source.span)
            )
            return None
        try:
            found = self._values(source.path)
        except _AliasCycle:
            message = f"reference '{local}' leads back to itself (through block inputs or picks)"
            self.diagnostics.append(Diagnostic("E0308", message, source.span, "a layer cannot depend on its own output"))
            return None
        if found is not None:
            return found
        end = self._follow(source.path)
        if end in self.x.absent:
            line = self.x.absent[end].line
            message = f"'{local}' is a learnable tensor that its condition (line {line}) skips: it has no value to pass through"
            self.diagnostics.append(Diagnostic("E0314", message, source.span, SKIPPED_TENSOR_HINT))
            return None
        candidates = [p[len(source.lookup) :] for p in [*self.x.defined, *self.x.lookups] if p.startswith(source.lookup)]
        hint = did_you_mean(local, candidates) or self._outside_hint(source, local)
        self.diagnostics.append(Diagnostic("E0303", f"unknown reference '{local}'", source.span, hint))
        return None

    def _outside_hint(self, source: Source, local: str) -> str | None:
        """A hint for a reference from inside a group or block to a name defined outside it."""
        scopes = source.lookup.split(".")[:-1]
        for depth in range(len(scopes) - 1, -1, -1):
            outer = "".join(f"{scope}." for scope in scopes[:depth]) + local
            if outer in self.x.defined or outer in self.x.lookups or outer in self.x.inputs:
                return (
                    f"'{local}' is outside this group or block, which sees only its own layers and its inputs "
                    f"('input', or those it declares): declare `inputs: [input, {local}]` on it and call it with "
                    f"`from: [<its input>, {local}]`"
                )
        return None

    def _deferred(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self._deferred(v) for v in value]
        if not isinstance(value, Deferred):
            return value
        refs = {}
        for name, path in value.refs.items():
            found = self._resolve(Source(path, value.span, path[: len(path) - len(name)]))
            refs[name] = found[0] if found else None
        params = {key: self._deferred(v) for key, v in value.params.items()}
        return dataclasses.replace(value, refs=refs, params=params)

    def _warn_unused(self, graph: Graph) -> None:
        read = {source for source, _ in graph.edges}
        for node in graph.nodes.values():
            if node.kind is Kind.OUTPUT or node.name in read:
                continue
            what = {Kind.INPUT: "input", Kind.TENSOR: "learnable tensor"}.get(node.kind, "output of layer")
            self.diagnostics.append(Diagnostic("W0301", f"{what} '{node.name}' is never used", node.span, severity=Severity.WARNING))


def _topological(paths: list[str], edges: tuple[tuple[str, str], ...]) -> tuple[list[str], list[str]]:
    """The paths in dependency order, each as early as the written order allows (Kahn's sort, taking
    the earliest written of the ready paths); or, if the edges hold a cycle, ([], one cycle in order)."""
    index = {path: i for i, path in enumerate(paths)}
    readers: dict[str, list[str]] = {path: [] for path in paths}
    waiting = dict.fromkeys(paths, 0)
    for source, target in edges:
        readers[source].append(target)
        waiting[target] += 1
    ready = [index[path] for path in paths if not waiting[path]]
    heapq.heapify(ready)
    result = []
    while ready:
        path = paths[heapq.heappop(ready)]
        result.append(path)
        for reader in readers[path]:
            waiting[reader] -= 1
            if not waiting[reader]:
                heapq.heappush(ready, index[reader])
    if len(result) == len(paths):
        return result, []
    return [], _cycle({path for path, count in waiting.items() if count}, edges)


def _cycle(stuck: set[str], edges: tuple[tuple[str, str], ...]) -> list[str]:
    """A cycle among `stuck` (paths left with unsorted inputs, each of which has a stuck source):
    walking from one to a stuck source of it, and on, must come back to a path already seen."""
    sources: dict[str, str] = {}
    for source, target in edges:
        if source in stuck and target in stuck:
            sources.setdefault(target, source)
    walk, seen = [min(stuck)], set()
    while walk[-1] not in seen:
        seen.add(walk[-1])
        walk.append(sources[walk[-1]])
    loop = walk[walk.index(walk[-1]) : -1]
    return loop[::-1]


def _edges(nodes: dict[str, Node]) -> list[tuple[str, str]]:
    """Data edges, plus edges from the values whose shapes a node's conditions or arguments read."""
    return [(ref.node, name) for name, node in nodes.items() for ref in [*node.inputs, *deferred_refs(node), *node.shares.values()]]


def deferred_refs(node: Node) -> list[Ref]:
    """The values a node's shape-reading conditions and arguments refer to (nested ones included)."""
    found: list[Ref] = []

    def visit(value: Any) -> None:
        if isinstance(value, list):
            for item in value:
                visit(item)
        elif isinstance(value, Deferred):
            found.extend(ref for ref in value.refs.values() if ref is not None)
            for param in value.params.values():
                visit(param)

    for value in [*node.guards, *node.args.values()]:
        visit(value)
    return found
