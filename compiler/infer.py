"""Infer: walk the graph in topological order, decide conditions, evaluate shape-reading values, apply
each op's shape rule, and count parameters and multiply-accumulates. Pure Python.

Sizes may be symbolic (`dims.Dim`): a rule then runs once over the whole declared range. A decision
that differs across the range is re-run at a size where it holds and one where it does not, so an
error names the size where the layer breaks.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any

from . import expr
from .diagnostics import Diagnostic, Severity, Span, UsageError, sort_key
from .dims import Dim, SymbolicError, Undecided, at, is_symbolic, points, show_point, symbols_of
from .ir import ALL, OUTPUT, Deferred, Graph, Kind, Node, Ref, TypedGraph, TypedNode
from .link import SKIPPED_TENSOR_HINT
from .ops import Call, ModuleEmit, OpDef, Registry, ShapeError, TensorType, plugin_failure
from .ops.core import FLOAT_DTYPES
from .ops.geometry import volume
from .values import as_declared, check_value, integral

MAX_PARAMS = 2**32
"""The default limit on a model's parameters (16 GiB as float32); `--max-params` raises it."""
MAX_ELEMENTS = 2**31
"""No value holds more elements per sample: beyond it the model cannot be run, so it is refused."""


def infer(graph: Graph, registry: Registry, max_params: int = MAX_PARAMS) -> tuple[TypedGraph | None, list[Diagnostic]]:
    """Type every node; returns the typed graph (None if there are errors) and the diagnostics.
    A model over `max_params` parameters, or with a value too large to hold, is refused here, before
    anything is allocated."""
    return _Inference(graph, registry, max_params).run()


class _Failed(Exception):
    pass


class _Inference:
    def __init__(self, graph: Graph, registry: Registry, max_params: int):
        self.graph = graph
        self.registry = registry
        self.max_params = max_params
        self.diagnostics: list[Diagnostic] = []
        self.typed: dict[str, TypedNode] = {}
        self.passed: dict[str, Ref] = {}
        """Skipped nodes: the value each passes through."""
        self.absent: dict[str, Span] = {}
        """Skipped learnable tensors (nothing to pass through): the condition that skipped each."""
        self.failed: set[str] = set()
        self.memo: dict[int, Any] = {}
        self.gaps: dict[Span, tuple[str, int]] = {}
        """Conditions that skipped a layer keeping its position: the first such position of each."""

    def run(self) -> tuple[TypedGraph | None, list[Diagnostic]]:
        for node in self.graph.nodes.values():
            try:
                self._visit(node)
            except _Failed:
                self.failed.add(node.name)
        self._warn_gaps()
        typed = TypedGraph(self.graph.name, self.typed)
        if typed.total_params > self.max_params:
            gib = typed.total_params * 4 / 2**30
            message = f"the model has {typed.total_params:,} parameters ({gib:,.1f} GiB as float32); the limit is {self.max_params:,}"
            self.diagnostics.append(
                Diagnostic("E0407", message, self.graph.nodes[OUTPUT].span, "raise it with --max-params N if you mean it")
            )
        diagnostics = sorted(set(self.diagnostics), key=sort_key)
        if any(d.is_error for d in diagnostics) or OUTPUT not in self.typed:
            return None, diagnostics
        typed.lint()
        return typed, diagnostics

    def _visit(self, node: Node) -> None:
        if node.kind is Kind.INPUT:
            self.typed[node.name] = TypedNode(node, {}, (), (), (node.declared,))
            return
        inputs = self._inputs(node)
        if node.kind is Kind.OUTPUT:
            self.typed[node.name] = TypedNode(node, dict(node.args), inputs, self._types(inputs), ())
            return
        skipped_by = next((guard for guard in node.guards if not self._decide(node, guard)), None)
        if skipped_by is not None:
            if inputs:
                self.passed[node.name] = inputs[0]
            else:
                self.absent[node.name] = skipped_by.span
            return
        op = self.registry.get(node.op)
        args = {key: as_declared(op.param_index[key].schema, self._value(node, op, key, value)) for key, value in node.args.items()}
        call = Call(args, self._types(inputs))
        self._check_inputs(node, op, call)
        outputs = self._guarded(node, op, lambda c: op.infer(c), call)
        tuple_valued = isinstance(outputs, tuple)
        outputs = outputs if tuple_valued else (outputs,)
        if node.kind is Kind.TENSOR:
            outputs = tuple(TensorType(t.shape, t.dtype, batched=False) for t in outputs)
        self._check_size(node, op, outputs)
        self._check_weights_dtype(node, op, call)
        self._check_fixed(node, op, call)
        params = self._guarded(node, op, op.count_params, call)
        macs = self._macs(node, op, call, outputs[0])
        if is_symbolic(params):
            self._fail("E0403", f"layer '{node.name}' ({op.name}): its parameter count depends on {params}", node.span)
        params -= self._shared(node, op, call)
        decided = node if not node.guards and args == node.args else dataclasses.replace(node, args=args, guards=())
        self.typed[node.name] = TypedNode(decided, args, inputs, call.inputs, outputs, params, macs, tuple_valued)

    # -- values ---------------------------------------------------------------------------------

    def _inputs(self, node: Node) -> tuple[Ref, ...]:
        """The values a node reads: skipped nodes passed through, `x.*` expanded, picks checked."""
        if any(ref.node in self.failed for ref in node.inputs):
            raise _Failed
        refs: list[Ref] = []
        for ref in node.inputs:
            refs += self._expand(node, ref)
        return tuple(refs)

    def _expand(self, node: Node, ref: Ref) -> list[Ref]:
        if ref.node in self.passed:
            return [self.passed[ref.node]]
        if ref.node in self.absent:
            line = self.absent[ref.node].line
            message = (
                f"layer '{node.name}' reads '{ref.node}', a learnable tensor that its condition (line {line}) skips: "
                "it has no value to pass through"
            )
            self._fail("E0314", message, node.span, SKIPPED_TENSOR_HINT)
        if ref.node not in self.typed:
            raise _Failed
        source = self.typed[ref.node]
        count, several = len(source.outputs), source.tuple_valued
        if ref.index == ALL:
            return [Ref(ref.node, i) for i in range(count)] if several else [Ref(ref.node)]
        if ref.index is None and several:
            picks = f"{ref.node}.0 … {ref.node}.{count - 1}" if count > 1 else f"{ref.node}.0"
            self._fail("E0404", f"layer '{node.name}' reads '{ref.node}', which has {count} output(s): pick one ({picks})", node.span)
        if ref.index is not None and ref.index >= count:
            self._fail("E0404", f"layer '{node.name}' reads '{ref}', but '{ref.node}' has {count} output(s)", node.span)
        return [ref if several else Ref(ref.node)]

    def _types(self, refs: tuple[Ref, ...]) -> tuple[TensorType, ...]:
        return tuple(self.typed[ref.node].outputs[ref.index or 0] for ref in refs)

    def _shape_of(self, deferred: Deferred, name: str) -> tuple[Any, ...]:
        ref = deferred.refs[name]
        if ref is None or ref.node in self.failed:
            raise _Failed
        refs = self._expand(self.graph.nodes[ref.node], ref)
        return self._types(tuple(refs[:1]))[0].shape

    def _evaluate(self, node: Node, deferred: Deferred) -> Any:
        """A shape-reading value; the block arguments it uses are evaluated first (once each)."""
        if id(deferred) in self.memo:
            return self.memo[id(deferred)]
        params = {key: self._evaluate(node, v) if isinstance(v, Deferred) else v for key, v in deferred.params.items()}
        try:
            value = expr.evaluate(deferred.expr, params, lambda name: self._shape_of(deferred, name))
        except expr.ExprError as error:
            self._fail("E0402", f"layer '{node.name}' ({node.op}): {error}", deferred.span)
        except Undecided as undecided:
            where = f"it holds at {show_point(undecided.holds)} but not at {show_point(undecided.fails)}"
            self._fail("E0403", f"layer '{node.name}': '{deferred.expr.text}' is not decided by the declared sizes: {where}", deferred.span)
        self.memo[id(deferred)] = value
        return value

    def _decide(self, node: Node, guard: Deferred) -> bool:
        """Guards are shared by every node of a conditional group: each is decided once."""
        decided = bool(self._evaluate(node, guard))
        if not decided and guard.gap is not None:
            self.gaps.setdefault(guard.span, guard.gap)
        return decided

    def _holds_state(self, node: TypedNode) -> bool:
        if node.kind is Kind.TENSOR:
            return True
        if node.kind is not Kind.CALL:
            return False
        op = self.registry.get(node.node.op)
        return op.float32_state(Call(node.args, node.input_types)) if op.float32_state is not None else node.params > 0

    def _warn_gaps(self) -> None:
        """W0401 where a skipped layer kept its position and a later position of its list holds tensors
        (whose state_dict keys the gap renumbers)."""
        if not self.gaps:
            return
        last: dict[str, int] = {}
        for node in self.typed.values():
            if self._holds_state(node):
                for prefix, position in node.node.numbered:
                    last[prefix] = max(last.get(prefix, -1), position)
        for span, (prefix, position) in self.gaps.items():
            if last.get(prefix, -1) > position:
                message = (
                    f"position '{prefix}{position}' is skipped by a condition that reads shapes, and keeps its number: the "
                    "unnamed layers after it are numbered as if it were there"
                )
                hint = "a conditional `append` in PyTorch numbers on without it: decide the condition from parameters, or give ids"
                self.diagnostics.append(Diagnostic("W0401", message, span, hint, Severity.WARNING))

    def _value(self, node: Node, op: OpDef, key: str, value: Any) -> Any:
        if isinstance(value, list) and any(isinstance(v, Deferred) for v in value):
            value = [self._evaluate(node, v) if isinstance(v, Deferred) else v for v in value]
        elif isinstance(value, Deferred):
            value = self._evaluate(node, value)
        else:
            return value
        span = node.arg_spans.get(key, node.span)
        if is_symbolic(value):
            self._fail("E0403", f"layer '{node.name}' ({node.op}): '{key}' must be a fixed size, but it depends on {value}", span)
        value = integral(op.param_index[key].schema, value)
        problem = check_value(op.param_index[key], value)
        if problem:
            self._fail("E0402", f"layer '{node.name}' ({node.op}): '{key}' {problem}", span)
        return value

    # -- checks ---------------------------------------------------------------------------------

    def _shared(self, node: Node, op: OpDef, call: Call) -> int:
        """Check each tensor this layer shares against its owner's; returns how many parameters the
        sharing saves (they are counted once, with the owner)."""
        saved = 0
        mine = self._guarded(node, op, op.weights, call) if op.weights else {}
        for attribute, ref in node.shares.items():
            theirs = self._weights(node, self.typed.get(ref.node))
            if attribute not in mine or attribute not in theirs:
                who = node.name if attribute not in mine else ref.node
                self._fail("E0405", f"layer '{node.name}': '{who}' has no learnable tensor '{attribute}' to share", node.span)
            if mine[attribute] != theirs[attribute]:
                shapes = f"{list(mine[attribute])} and {list(theirs[attribute])}"
                self._fail("E0405", f"layer '{node.name}' cannot share '{attribute}' with '{ref.node}': shapes {shapes}", node.span)
            saved += volume(mine[attribute])
        return saved

    def _weights(self, reader: Node, typed: TypedNode | None) -> dict[str, tuple[int, ...]]:
        """The learnable tensors of `typed`, which `reader` shares (a plugin's failure is reported there)."""
        if typed is None or typed.kind is not Kind.CALL:
            return {}
        op = self.registry.get(typed.node.op)
        return self._guarded(reader, op, op.weights, Call(typed.args, typed.input_types)) if op.weights else {}

    def _check_inputs(self, node: Node, op: OpDef, call: Call) -> None:
        low, high = self._guarded(node, op, lambda c: op.arity_for(c.args), call)
        count = len(call.inputs)
        if node.kind is Kind.CALL and not low <= count <= (high or count):
            want = f"{low}" if low == high else f"at least {low}" if high is None else f"{low} to {high}"
            self._fail("E0307", f"layer '{node.name}' ({op.name}): takes {want} input(s), got {count}", node.span)
        if not op.unbatched:
            for ref, t in zip(node.inputs, call.inputs):
                if not t.batched:
                    message = f"layer '{node.name}' ({op.name}): '{ref}' has no batch dimension"
                    self._fail("E0401", message, node.span, f"{op.name} needs a batched input; learnable tensors have none")

    def _macs(self, node: Node, op: OpDef, call: Call, output: TensorType) -> Any:
        """The MACs now where every size is fixed; with symbolic sizes, a function giving the formula."""
        shapes = [*(t.shape for t in call.inputs), output.shape]
        if not is_symbolic(shapes):
            return self._guarded(node, op, lambda c: op.count_macs(c, output), call)
        try:  # counted when first asked for (summary, budgets): its sizes must combine into few enough points
            points(sorted(symbols_of(shapes).values(), key=lambda size: size.name))
        except SymbolicError as error:
            self._fail("E0403", f"layer '{node.name}' ({op.name}): its MACs cannot be counted: {error}", node.span)
        return functools.partial(_symbolic_macs, node, op, call, output)

    def _check_size(self, node: Node, op: OpDef, outputs: tuple[TensorType, ...]) -> None:
        for t in outputs:
            largest = 1
            for size in t.shape:  # sizes are positive: the product of their largest values bounds the count
                largest *= max(size.table) if isinstance(size, Dim) else size
            if largest > MAX_ELEMENTS:
                message = f"layer '{node.name}' ({op.name}): its output {list(t.shape)} holds {largest:,} elements per sample"
                self._fail("E0407", message, node.span, f"a value holds at most {MAX_ELEMENTS:,} elements per sample")

    def _check_weights_dtype(self, node: Node, op: OpDef, call: Call) -> None:
        """A module with float32 tensors takes float32 inputs (norms also half precision), as torch does."""
        if not isinstance(op.emit, ModuleEmit):
            return
        holds = (
            self._guarded(node, op, op.float32_state, call)
            if op.float32_state is not None
            else self._guarded(node, op, op.count_params, call) != 0
        )
        allowed = ("float32", "float16", "bfloat16") if op.half_inputs else ("float32",)
        for t in call.inputs if holds else ():
            if t.dtype in FLOAT_DTYPES and t.dtype not in allowed:
                hint = "declare the input float32 (the model's weights are float32)"
                self._fail(
                    "E0401", f"layer '{node.name}' ({op.name}): its input is {t.dtype}, but its weights are float32", node.span, hint
                )

    def _check_fixed(self, node: Node, op: OpDef, call: Call) -> None:
        """A module is built with fixed sizes: a constructor argument may not depend on symbolic sizes."""
        if not isinstance(op.emit, ModuleEmit):
            return
        kwargs = self._guarded(node, op, op.emit.kwargs, call)
        for key, value in kwargs.items():
            if is_symbolic(value):
                self._fail("E0403", f"layer '{node.name}' ({op.name}): '{key}' must be a fixed size, but it depends on {value}", node.span)

    def _guarded(self, node: Node, op: OpDef, rule: Callable[[Call], Any], call: Call) -> Any:
        """Run a rule; a ShapeError becomes E0401, and a decision that differs across the declared
        sizes is re-run at one size where it holds and one where it does not, to name the size."""
        try:
            return self._run(node, op, rule, call)
        except ShapeError as error:
            self._shape_error(node, op, error, "")
        except SymbolicError as error:
            self._fail("E0403", f"layer '{node.name}' ({op.name}): {error}", node.span)
        except Undecided as undecided:
            for point in (undecided.holds, undecided.fails):
                try:
                    self._run(node, op, rule, _call_at(call, point))
                except ShapeError as error:
                    self._shape_error(node, op, error, f" (at {show_point(point)})")
            where = f"{show_point(undecided.holds)} and {show_point(undecided.fails)}"
            hint = "declare sizes (multiple_of, min, max) under which the layer computes one way"
            self._fail("E0403", f"layer '{node.name}' ({op.name}): its shape follows different rules at {where}", node.span, hint)

    def _run(self, node: Node, op: OpDef, rule: Callable[[Call], Any], call: Call) -> Any:
        """A rule's result. A plugin's rule that raises anything but ShapeError is the plugin's bug,
        reported as such; a builtin rule that does is nncompile's (an internal error)."""
        try:
            return rule(call)
        except (ShapeError, SymbolicError, Undecided):
            raise
        except Exception as error:
            failure = plugin_failure(op, error)
            if failure is None:
                raise
            self._fail("E0406", f"layer '{node.name}': {failure}", node.span, "this is a bug in the plugin that defines the op")

    def _shape_error(self, node: Node, op: OpDef, error: ShapeError, where: str) -> None:
        span = node.arg_spans.get(error.param) if error.param else None
        self._fail("E0401", f"layer '{node.name}' ({op.name}): {error.message}{where}", span or node.span)

    def _fail(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, message, span, hint))
        raise _Failed


def _symbolic_macs(node: Node, op: OpDef, call: Call, output: TensorType) -> Any:
    try:
        return op.count_macs(call, output)
    except Exception as error:
        failure = plugin_failure(op, error, " to count MACs")
        if failure is None:
            raise
        raise UsageError(f"layer '{node.name}': {failure}") from None


def _call_at(call: Call, point: Mapping[str, int]) -> Call:
    inputs = tuple(TensorType(at(t.shape, point), t.dtype, t.batched) for t in call.inputs)
    return Call({key: at(value, point) for key, value in call.args.items()}, inputs)
