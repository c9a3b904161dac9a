"""Outline: an emitted module with chosen block calls as called submodules, for FSDP2 and activation
checkpointing (both act on a module's forward: FSDP2 gathers a unit's weights in its pre-hook,
`torch.utils.checkpoint` wraps it).

`emit` makes one flat graph that calls every layer's module itself; the block calls and groups of the
spec are containers that are never called. `outline` cuts the graph at chosen containers (the units):
each becomes a `fx.GraphModule` whose graph is that unit's part of the model, called once by the top
graph with the values it reads and returning the values read outside it. Parameters and buffers stay
where they were, so `state_dict` keys and their order do not change; the fx nodes keep their metadata
(`LAYER_KEY`), now in the unit's graph.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Sequence
from typing import NamedTuple

import networkx as nx
import torch
from torch import fx

from .diagnostics import did_you_mean
from .emit import LAYER_KEY
from .ir import Kind, Scope, TypedGraph
from .layer_patterns import matches

Vertex = fx.Node | str
"""A step of the top graph: one of its fx nodes, or a unit (its path)."""


class _Cut(NamedTuple):
    """A unit: its module, the outer values its call passes (in order), and its values read outside it."""

    module: fx.GraphModule
    reads: list[fx.Node]
    results: list[fx.Node]


class OutlineError(ValueError):
    """The units asked for cannot be outlined (not a block call or group, overlapping, not convex)."""


def units(typed: TypedGraph, patterns: Sequence[str] | None = None) -> list[str]:
    """The module paths of the units, in spec order: block calls and groups that hold learnable tensors.

    By default every outermost block call (one not inside another block call; groups around it do not
    count): GPT's `transformer.h.0` … `transformer.h.11`, ResNet's `layer1.0`, UNet's `down1`. A repeat
    copy of a block is a block call; a group (a repeated one included) is a unit only when a pattern
    names it. With `patterns` (the layer patterns of `train.freeze`), the outermost block calls and
    groups a pattern matches (`layer1` matches `layer1.0`, `layer1.1` …). Single layers are never units:
    each is already a called module. An empty list when nothing matches.
    """
    weighted = _weighted(typed)
    scopes = {path: scope for path, scope in _scopes(typed).items() if path in weighted}
    if patterns is None:
        return _outermost([path for path, scope in scopes.items() if scope.block is not None])
    return _outermost([path for path in scopes if any(matches(path, pattern) for pattern in patterns)])


def outline(module: fx.GraphModule, typed: TypedGraph, unit_paths: Sequence[str]) -> fx.GraphModule:
    """A module computing what `module` (emitted from `typed`) computes, in which each of `unit_paths` is
    a `fx.GraphModule` called by the top graph (`call_module`), holding the container's parameters,
    buffers and submodules under their old names.

    The result shares parameters, buffers and layer modules with `module` (which is left as it was);
    `state_dict` keys and order are the same, so either loads the other's weights. A tensor a unit reads
    from outside it (a weight of another unit or of the root) is an input of its call. Raises
    OutlineError for a path that is not a block call or group of `typed`, nested paths, or a unit that is
    not convex (a value leaves it and comes back in, so it cannot be one call).
    """
    paths = _checked(typed, unit_paths)
    members = _members(module.graph, typed, paths)
    order = _order(module.graph, members)
    cuts = {path: _unit(module.get_submodule(path), module.graph, members, path) for path in paths}
    return _top(module, order, cuts)


def _scopes(typed: TypedGraph) -> dict[str, Scope]:
    """Every block call and group, by path, in the order their first layers come."""
    found: dict[str, Scope] = {}
    for node in typed.layers.values():
        for scope in node.node.scopes:
            found.setdefault(scope.path, scope)
    return found


def _weighted(typed: TypedGraph) -> set[str]:
    """The paths of block calls and groups that hold a learnable tensor (so emit made a container)."""
    holders = (n for n in typed.layers.values() if n.params > 0 or n.kind is Kind.TENSOR)
    return {scope.path for node in holders for scope in node.node.scopes}


def _outermost(paths: list[str]) -> list[str]:
    """The paths that lie inside none of the others."""
    return [path for path in paths if not any(_under(path, other) for other in paths)]


def _under(name: str, path: str) -> bool:
    """Whether module path `name` lies strictly inside `path`."""
    return name.startswith(path + ".")


def _checked(typed: TypedGraph, unit_paths: Sequence[str]) -> list[str]:
    """The unit paths, refused unless each is a distinct block call or group and none holds another."""
    scopes = _scopes(typed)
    for path in unit_paths:
        if path not in scopes:
            hint = did_you_mean(path, scopes)
            raise OutlineError(f"'{path}' is not a block call or group of model '{typed.name}'" + (f" ({hint})" if hint else ""))
    repeated = next((path for path in unit_paths if unit_paths.count(path) > 1), None)
    if repeated is not None:
        raise OutlineError(f"unit '{repeated}' is given twice")
    for path, other in itertools.permutations(unit_paths, 2):
        if _under(other, path):
            raise OutlineError(f"units '{path}' and '{other}' overlap: a unit inside another is not supported")
    return list(unit_paths)


def _members(graph: fx.Graph, typed: TypedGraph, paths: list[str]) -> dict[fx.Node, str]:
    """The unit each computing fx node belongs to, found from the layer it computes: its `LAYER_KEY`,
    its module, or (an intermediate value of a layer) its readers. `get_attr` nodes belong to no unit:
    each graph that reads a tensor reads it itself (see `_is_local`)."""
    unit_of = {name: s.path for name, n in typed.layers.items() for s in n.node.scopes if s.path in paths}
    members: dict[fx.Node, str] = {}
    for node in reversed(graph.nodes):
        if node.op not in ("call_module", "call_function", "call_method"):
            continue
        layer = _layer(node, typed)
        unit = unit_of.get(layer) if layer is not None else next((members.get(u) for u in node.users), None)
        if unit is not None:
            members[node] = unit
    empty = [path for path in paths if path not in members.values()]
    if empty:
        raise OutlineError(f"unit '{empty[0]}' computes nothing: it has no layers in the graph")
    return members


def _layer(node: fx.Node, typed: TypedGraph) -> str | None:
    """The layer whose output `node` holds (`LAYER_KEY`, without an output index) or whose module it calls."""
    key = node.meta.get(LAYER_KEY)
    if key is not None:
        return key if key in typed.nodes else key.rpartition(".")[0]
    return str(node.target) if node.op == "call_module" else None


def _is_local(attribute: fx.Node, unit: str | None) -> bool:
    """Whether a `get_attr` is read inside `unit` from the unit's own module (not passed in)."""
    return unit is not None and _under(str(attribute.target), unit)


def _vertex(node: fx.Node, members: dict[fx.Node, str]) -> Vertex:
    return members.get(node, node)


def _order(graph: fx.Graph, members: dict[fx.Node, str]) -> list[Vertex]:
    """The steps of the top graph in an order that runs (the old order where it can), each unit one
    step; OutlineError where a unit cannot be one step."""
    dag: nx.DiGraph = nx.DiGraph()
    position: dict[Vertex, int] = {}
    for index, node in enumerate(graph.nodes):
        vertex = _vertex(node, members)
        if node.op == "get_attr" and all(_is_local(node, members.get(user)) for user in node.users) and node.users:
            continue
        position.setdefault(vertex, index)
        dag.add_node(vertex)
        for source in node.all_input_nodes:
            if not (source.op == "get_attr" and _is_local(source, members.get(node))) and _vertex(source, members) != vertex:
                dag.add_edge(_vertex(source, members), vertex)
    try:
        cycle = nx.find_cycle(dag)
    except nx.NetworkXNoCycle:
        return list(nx.lexicographical_topological_sort(dag, key=position.__getitem__))
    raise OutlineError(_not_convex([source for source, _ in cycle]))


def _not_convex(cycle: list[Vertex]) -> str:
    """The message for a cycle of steps: the unit(s) on it and the values outside it passes through."""
    stuck = [v for v in cycle if isinstance(v, str)]
    through = ", ".join(f"'{v.meta.get(LAYER_KEY, v.name)}'" for v in cycle if not isinstance(v, str))
    if len(stuck) == 1:
        return f"unit '{stuck[0]}' is not convex: its values reach {through} outside it and come back into it"
    return f"units {', '.join(repr(s) for s in stuck)} read each other's values" + (f" (through {through})" if through else "")


def _unit(container: torch.nn.Module, graph: fx.Graph, members: dict[fx.Node, str], path: str) -> _Cut:
    """Unit `path` as a GraphModule rooted at its container, with the outer values it reads (its
    arguments, in order) and the values of it read outside (its results)."""
    inside = [node for node in graph.nodes if members.get(node) == path]
    owned = set(inside)
    reads = [s for node in inside for s in node.all_input_nodes if s not in owned and not (s.op == "get_attr" and _is_local(s, path))]
    reads = list(dict.fromkeys(reads))
    results = [node for node in inside if any(members.get(user) != path for user in node.users)]
    sub = fx.Graph()
    env = {source: sub.placeholder(source.name) for source in reads}
    for node in inside:
        for source in node.all_input_nodes:
            if source not in env:
                env[source] = sub.get_attr(source.target[len(path) + 1 :])
                env[source].meta = dict(source.meta)
        env[node] = sub.node_copy(node, env.__getitem__)
        if node.op == "call_module":
            env[node].target = node.target[len(path) + 1 :]
    sub.output(env[results[0]] if len(results) == 1 else tuple(env[r] for r in results))
    sub.lint()
    unit = fx.GraphModule(container, sub, class_name="Unit")
    _adopt(unit, container)
    return _Cut(unit, reads, results)


def _top(module: fx.GraphModule, order: list[Vertex], cuts: dict[str, _Cut]) -> fx.GraphModule:
    """The top graph: the steps in order, each unit a `call_module` whose results are picked by index."""
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    for step in order:
        if not isinstance(step, str):
            env[step] = graph.node_copy(step, env.__getitem__)
            continue
        cut = cuts[step]
        call = graph.call_module(step, tuple(env[source] for source in cut.reads))
        for index, result in enumerate(cut.results):
            env[result] = call if len(cut.results) == 1 else graph.call_function(operator.getitem, (call, index))
    graph.lint()
    top = fx.GraphModule(module, graph, class_name=type(module).__name__)
    _adopt(top, module)
    _install(top, {path: cut.module for path, cut in cuts.items()})
    top.__dict__.update({k: v for k, v in module.__dict__.items() if k.startswith("nncompile_")})
    return top


def _adopt(target: torch.nn.Module, source: torch.nn.Module) -> None:
    """Give `target` exactly `source`'s parameters, buffers and submodules, in `source`'s order."""
    target._parameters = dict(source._parameters)
    target._buffers = dict(source._buffers)
    target._non_persistent_buffers_set = set(source._non_persistent_buffers_set)
    target._modules = dict(source._modules)
    target.training = source.training


def _install(root: torch.nn.Module, units: dict[str, fx.GraphModule]) -> None:
    """Put each unit at its path under `root`, copying the containers on the way (once each) so that
    the flat module's own tree stays as it was."""
    copies: set[int] = set()
    for path, unit in units.items():
        parent = root
        *outer, leaf = path.split(".")
        for part in outer:
            child = parent.get_submodule(part)
            if id(child) not in copies:
                original, child = child, torch.nn.Module()
                _adopt(child, original)
                parent._modules[part] = child
                copies.add(id(child))
            parent = child
        parent._modules[leaf] = unit
