"""Running an op's rules (its shape rule, parameter and MAC counts, constructor arguments) at a node:
a ShapeError is E0401, a decision that differs across the declared sizes is re-run at one size where
it holds and one where it does not, to name the size, and a plugin rule's own failure is E0406."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from ..diagnostics import UsageError
from ..dims import SymbolicError, Undecided, at, is_symbolic, points, show_point, symbols_of
from ..ops import Call, ShapeError, TensorType, plugin_failure
from ._context import Application, Context


def guarded(ctx: Context, app: Application, rule: Callable[[Call], Any]) -> Any:
    """The rule's result for the application's call; Failed after reporting why there is none."""
    node, op = app.node, app.op
    try:
        return _run(ctx, app, rule, app.call)
    except ShapeError as error:
        _shape_error(ctx, app, error, "")
    except SymbolicError as error:
        ctx.fail("E0403", f"layer '{node.name}' ({op.name}): {error}", node.span)
    except Undecided as undecided:
        for point in (undecided.holds, undecided.fails):
            try:
                _run(ctx, app, rule, _call_at(app.call, point))
            except ShapeError as error:
                _shape_error(ctx, app, error, f" (at {show_point(point)})")
        where = f"{show_point(undecided.holds)} and {show_point(undecided.fails)}"
        hint = "declare sizes (multiple_of, min, max) under which the layer computes one way"
        ctx.fail("E0403", f"layer '{node.name}' ({op.name}): its shape follows different rules at {where}", node.span, hint)


def _run(ctx: Context, app: Application, rule: Callable[[Call], Any], call: Call) -> Any:
    """A rule's result. A plugin's rule that raises anything but ShapeError is the plugin's bug,
    reported as such; a builtin rule that does is nncompile's (an internal error)."""
    try:
        return rule(call)
    except (ShapeError, SymbolicError, Undecided):
        raise
    except Exception as error:
        failure = plugin_failure(app.op, error)
        if failure is None:
            raise
        ctx.fail("E0406", f"layer '{app.node.name}': {failure}", app.node.span, "this is a bug in the plugin that defines the op")


def _shape_error(ctx: Context, app: Application, error: ShapeError, where: str) -> None:
    node = app.node
    span = node.arg_spans.get(error.param) if error.param else None
    ctx.fail("E0401", f"layer '{node.name}' ({app.op.name}): {error.message}{where}", span or node.span)


def _call_at(call: Call, point: Mapping[str, int]) -> Call:
    """The call with every symbolic size fixed at `point`."""
    inputs = tuple(TensorType(at(t.shape, point), t.dtype, t.batched) for t in call.inputs)
    return Call({key: at(value, point) for key, value in call.args.items()}, inputs)


def macs(ctx: Context, app: Application, output: TensorType) -> Any:
    """The MACs now where every size is fixed; with symbolic sizes, a function giving the formula."""
    shapes = [*(t.shape for t in app.call.inputs), output.shape]
    if not is_symbolic(shapes):
        return guarded(ctx, app, lambda c: app.op.count_macs(c, output))
    try:  # counted when first asked for (summary, budgets): its sizes must combine into few enough points
        points(sorted(symbols_of(shapes).values(), key=lambda size: size.name))
    except SymbolicError as error:
        ctx.fail("E0403", f"layer '{app.node.name}' ({app.op.name}): its MACs cannot be counted: {error}", app.node.span)
    return functools.partial(_symbolic_macs, app, output)


def _symbolic_macs(app: Application, output: TensorType) -> Any:
    try:
        return app.op.count_macs(app.call, output)
    except Exception as error:
        failure = plugin_failure(app.op, error, " to count MACs")
        if failure is None:
            raise
        raise UsageError(f"layer '{app.node.name}': {failure}") from None
