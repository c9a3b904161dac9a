"""What a typed node must satisfy beyond its op's shape rule: the input count, batched inputs, a size
each output can hold, float32 inputs to float32 weights, fixed constructor arguments, and tensors
shared with an owner of the same shape."""

from __future__ import annotations

from ..dims import Dim, is_symbolic
from ..ir import Kind, Node, TypedNode
from ..ops import Call, ModuleEmit, TensorType
from ..ops.core import FLOAT_DTYPES
from ..ops.geometry import volume
from ._context import Application, Context
from ._rules import guarded

MAX_ELEMENTS = 2**31
"""No value holds more elements per sample: beyond it the model cannot be run, so it is refused."""


def check_inputs(ctx: Context, app: Application) -> None:
    """E0307 for the wrong number of inputs, E0401 for an unbatched one where the op needs a batch."""
    node, op, call = app.node, app.op, app.call
    low, high = guarded(ctx, app, lambda c: op.arity_for(c.args))
    count = len(call.inputs)
    if node.kind is Kind.CALL and not low <= count <= (high or count):
        want = f"{low}" if low == high else f"at least {low}" if high is None else f"{low} to {high}"
        ctx.fail("E0307", f"layer '{node.name}' ({op.name}): takes {want} input(s), got {count}", node.span)
    if not op.unbatched:
        for ref, t in zip(node.inputs, call.inputs):
            if not t.batched:
                message = f"layer '{node.name}' ({op.name}): '{ref}' has no batch dimension"
                ctx.fail("E0401", message, node.span, f"{op.name} needs a batched input; learnable tensors have none")


def check_size(ctx: Context, app: Application, outputs: tuple[TensorType, ...]) -> None:
    """E0407 for an output over MAX_ELEMENTS elements per sample (at the largest declared sizes)."""
    for t in outputs:
        largest = 1
        for size in t.shape:  # sizes are positive: the product of their largest values bounds the count
            largest *= max(size.table) if isinstance(size, Dim) else size
        if largest > MAX_ELEMENTS:
            message = f"layer '{app.node.name}' ({app.op.name}): its output {list(t.shape)} holds {largest:,} elements per sample"
            ctx.fail("E0407", message, app.node.span, f"a value holds at most {MAX_ELEMENTS:,} elements per sample")


def check_weights_dtype(ctx: Context, app: Application) -> None:
    """A module with float32 tensors takes float32 inputs (norms also half precision), as torch does."""
    op = app.op
    if not isinstance(op.emit, ModuleEmit):
        return
    holds = guarded(ctx, app, op.float32_state) if op.float32_state is not None else guarded(ctx, app, op.count_params) != 0
    allowed = ("float32", "float16", "bfloat16") if op.half_inputs else ("float32",)
    for t in app.call.inputs if holds else ():
        if t.dtype in FLOAT_DTYPES and t.dtype not in allowed:
            message = f"layer '{app.node.name}' ({op.name}): its input is {t.dtype}, but its weights are float32"
            ctx.fail("E0401", message, app.node.span, "declare the input float32 (the model's weights are float32)")


def check_fixed(ctx: Context, app: Application) -> None:
    """A module is built with fixed sizes: a constructor argument may not depend on symbolic sizes."""
    op = app.op
    if not isinstance(op.emit, ModuleEmit):
        return
    for key, value in guarded(ctx, app, op.emit.kwargs).items():
        if is_symbolic(value):
            message = f"layer '{app.node.name}' ({op.name}): '{key}' must be a fixed size, but it depends on {value}"
            ctx.fail("E0403", message, app.node.span)


def shared(ctx: Context, app: Application) -> int:
    """Check each tensor this layer shares against its owner's; returns how many parameters the
    sharing saves (they are counted once, with the owner)."""
    node = app.node
    saved = 0
    mine = guarded(ctx, app, app.op.weights) if app.op.weights else {}
    for attribute, ref in node.shares.items():
        theirs = _weights(ctx, node, ctx.typed.get(ref.node))
        if attribute not in mine or attribute not in theirs:
            who = node.name if attribute not in mine else ref.node
            ctx.fail("E0405", f"layer '{node.name}': '{who}' has no learnable tensor '{attribute}' to share", node.span)
        if mine[attribute] != theirs[attribute]:
            shapes = f"{list(mine[attribute])} and {list(theirs[attribute])}"
            ctx.fail("E0405", f"layer '{node.name}' cannot share '{attribute}' with '{ref.node}': shapes {shapes}", node.span)
        saved += volume(mine[attribute])
    return saved


def _weights(ctx: Context, reader: Node, typed: TypedNode | None) -> dict[str, tuple[int, ...]]:
    """The learnable tensors of `typed`, which `reader` shares (a plugin's failure is reported there)."""
    if typed is None or typed.kind is not Kind.CALL:
        return {}
    op = ctx.registry.get(typed.node.op)
    return guarded(ctx, Application(reader, op, Call(typed.args, typed.input_types)), op.weights) if op.weights else {}
