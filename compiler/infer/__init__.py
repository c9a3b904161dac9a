"""Infer: walk the graph in topological order, decide conditions, evaluate shape-reading values, apply
each op's shape rule, and count parameters and multiply-accumulates. Pure Python. `infer` is the stage;
the modules beside it are its steps.

Sizes may be symbolic (`dims.Dim`): a rule then runs once over the whole declared range. A decision
that differs across the range is re-run at a size where it holds and one where it does not, so an
error names the size where the layer breaks.
"""

from __future__ import annotations

import dataclasses

from ..diagnostics import Diagnostic, sort_key
from ..dims import is_symbolic
from ..ir import OUTPUT, Graph, Kind, Node, Ref, TypedGraph, TypedNode
from ..ops import Call, Registry, TensorType
from ..values import as_declared
from . import _checks, _gaps, _rules, _values
from ._context import Application, Context, Failed

__all__ = ["MAX_PARAMS", "infer"]

MAX_PARAMS = 2**32
"""The default limit on a model's parameters (16 GiB as float32); `--max-params` raises it."""


def infer(graph: Graph, registry: Registry, max_params: int = MAX_PARAMS) -> tuple[TypedGraph | None, list[Diagnostic]]:
    """Type every node; returns the typed graph (None if there are errors) and the diagnostics.
    A model over `max_params` parameters, or with a value too large to hold, is refused here, before
    anything is allocated."""
    ctx = Context(graph, registry)
    for node in graph.nodes.values():
        try:
            _visit(ctx, node)
        except Failed:
            ctx.failed.add(node.name)
    _gaps.warn_gaps(ctx)
    typed = TypedGraph(graph.name, ctx.typed)
    if typed.total_params > max_params:
        gib = typed.total_params * 4 / 2**30
        message = f"the model has {typed.total_params:,} parameters ({gib:,.1f} GiB as float32); the limit is {max_params:,}"
        ctx.diagnostics.append(Diagnostic("E0407", message, graph.nodes[OUTPUT].span, "raise it with --max-params N if you mean it"))
    diagnostics = sorted(set(ctx.diagnostics), key=sort_key)
    if any(d.is_error for d in diagnostics) or OUTPUT not in ctx.typed:
        return None, diagnostics
    typed.lint()
    return typed, diagnostics


def _visit(ctx: Context, node: Node) -> None:
    """Type one node (or record what a skipped one passes through); Failed after reporting why not."""
    if node.kind is Kind.INPUT:
        ctx.typed[node.name] = TypedNode(node, {}, (), (), (node.declared,))
        return
    inputs = _values.inputs_of(ctx, node)
    if node.kind is Kind.OUTPUT:
        ctx.typed[node.name] = TypedNode(node, dict(node.args), inputs, _values.types_of(ctx, inputs), ())
        return
    skipped_by = next((guard for guard in node.guards if not _values.decide(ctx, node, guard)), None)
    if skipped_by is not None:
        if inputs:
            ctx.passed[node.name] = inputs[0]
        else:
            ctx.absent[node.name] = skipped_by.span
        return
    op = ctx.registry.get(node.op)
    args = {key: as_declared(op.param_index[key].schema, _values.argument(ctx, node, op, key)) for key in node.args}
    app = Application(node, op, Call(args, _values.types_of(ctx, inputs)))
    ctx.typed[node.name] = _typed(ctx, app, inputs)


def _typed(ctx: Context, app: Application, inputs: tuple[Ref, ...]) -> TypedNode:
    """The typed node of an op's application: its outputs checked, its parameters and MACs counted."""
    node, op, call = app.node, app.op, app.call
    _checks.check_inputs(ctx, app)
    outputs = _rules.guarded(ctx, app, lambda c: op.infer(c))
    tuple_valued = isinstance(outputs, tuple)
    outputs = outputs if tuple_valued else (outputs,)
    if node.kind is Kind.TENSOR:
        outputs = tuple(TensorType(t.shape, t.dtype, batched=False) for t in outputs)
    _checks.check_size(ctx, app, outputs)
    _checks.check_weights_dtype(ctx, app)
    _checks.check_fixed(ctx, app)
    params = _rules.guarded(ctx, app, op.count_params)
    counted = _rules.macs(ctx, app, outputs[0])
    if is_symbolic(params):
        ctx.fail("E0403", f"layer '{node.name}' ({op.name}): its parameter count depends on {params}", node.span)
    params -= _checks.shared(ctx, app)
    decided = node if not node.guards and call.args == node.args else dataclasses.replace(node, args=call.args, guards=())
    return TypedNode(decided, call.args, inputs, call.inputs, outputs, params, counted, tuple_valued)
