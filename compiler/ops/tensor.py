"""Ops that move data without weights: flatten, reshape, permute, identity; merges add, mul, concat."""

from __future__ import annotations

from .core import Call, FunctionEmit, Int, Ints, ModuleEmit, OpDef, ShapeError, TensorType, normalize_dim


def _flatten_infer(call: Call) -> TensorType:
    shape = call.x.shape
    start = normalize_dim(call.args["start"], call.x.rank, "start")
    end = normalize_dim(call.args["end"], call.x.rank, "end")
    if start > end:
        raise ShapeError(f"start dim {call.args['start']} comes after end dim {call.args['end']}", "start")
    merged = 1
    for size in shape[start : end + 1]:
        merged *= size
    return call.x.with_shape((*shape[:start], merged, *shape[end + 1 :]))


FLATTEN = OpDef(
    name="flatten",
    doc="merges dims start..end into one (torch.flatten); dims count the batch as 0",
    params=(Int("start", 1), Int("end", -1)),
    infer=_flatten_infer,
    emit=FunctionEmit("torch:flatten", lambda call: {"start_dim": call.args["start"], "end_dim": call.args["end"]}),
    category="tensor",
)


def _reshape_target(call: Call) -> tuple[int, ...]:
    """The per-sample target shape with any -1 resolved."""
    shape = list(call.args["shape"])
    if shape.count(-1) > 1 or any(s == 0 or s < -1 for s in shape):
        raise ShapeError(f"shape {shape} may hold positive sizes and at most one -1", "shape")
    known = 1
    for size in shape:
        known *= size if size != -1 else 1
    total = call.x.numel()
    if -1 in shape:
        if total % known:
            raise ShapeError(f"cannot reshape {list(call.x.shape)} ({total} elements) into {shape}", "shape")
        shape[shape.index(-1)] = total // known
    elif known != total:
        raise ShapeError(f"cannot reshape {list(call.x.shape)} ({total} elements) into {shape} ({known})", "shape")
    return tuple(shape)


RESHAPE = OpDef(
    name="reshape",
    doc="reshapes each sample to `shape` (per sample, batch kept; one -1 allowed)",
    params=(Ints("shape"),),
    infer=lambda call: call.x.with_shape(_reshape_target(call)),
    emit=FunctionEmit("torch:reshape", lambda call: {"shape": [-1, *_reshape_target(call)]}),
    category="tensor",
)


def _permute_infer(call: Call) -> TensorType:
    dims = list(call.args["dims"])
    if sorted(dims) != list(range(call.x.rank + 1)) or dims[0] != 0:
        raise ShapeError(
            f"dims {dims} must be a permutation of 0..{call.x.rank} that keeps the batch (0) first",
            "dims",
        )
    return call.x.with_shape(tuple(call.x.shape[d - 1] for d in dims[1:]))


PERMUTE = OpDef(
    name="permute",
    doc="reorders dims (torch.permute); dims count the batch as 0, which stays first",
    params=(Ints("dims"),),
    infer=_permute_infer,
    emit=FunctionEmit("torch:permute", lambda call: {"dims": list(call.args["dims"])}),
    category="tensor",
)

IDENTITY = OpDef(
    name="identity",
    doc="passes its input through (torch.nn.Identity)",
    infer=lambda call: call.x,
    emit=ModuleEmit("torch.nn:Identity", lambda call: {}),
    category="tensor",
)


def _same_dtype_and_rank(call: Call) -> None:
    first = call.inputs[0]
    for other in call.inputs[1:]:
        if other.dtype != first.dtype:
            raise ShapeError(f"inputs have different dtypes: {first.dtype} and {other.dtype}")
        if other.rank != first.rank:
            raise ShapeError(f"inputs have different ranks: {list(first.shape)} and {list(other.shape)}")


def _broadcast_infer(call: Call) -> TensorType:
    _same_dtype_and_rank(call)
    shape = list(call.inputs[0].shape)
    for other in call.inputs[1:]:
        for i, (a, b) in enumerate(zip(shape, other.shape)):
            if a != b and 1 not in (a, b):
                shapes = ", ".join(str(list(t.shape)) for t in call.inputs)
                raise ShapeError(f"input shapes do not broadcast: {shapes}")
            shape[i] = max(a, b)
    return call.inputs[0].with_shape(tuple(shape))


def _concat_infer(call: Call) -> TensorType:
    _same_dtype_and_rank(call)
    axis = normalize_dim(call.args["dim"], call.x.rank, "dim")
    first = call.inputs[0].shape
    for other in call.inputs[1:]:
        if any(a != b for i, (a, b) in enumerate(zip(first, other.shape)) if i != axis):
            shapes = ", ".join(str(list(t.shape)) for t in call.inputs)
            raise ShapeError(f"inputs must match except along dim {call.args['dim']}: {shapes}")
    size = sum(t.shape[axis] for t in call.inputs)
    return call.x.with_shape((*first[:axis], size, *first[axis + 1 :]))


def _merge(name: str, doc: str, target: str) -> OpDef:
    return OpDef(name, doc, _broadcast_infer, FunctionEmit(target, inputs="fold"), arity=(2, None), category="merge")


OPS = (
    FLATTEN,
    RESHAPE,
    PERMUTE,
    IDENTITY,
    _merge("add", "element-wise sum of its inputs (broadcasting)", "operator:add"),
    _merge("mul", "element-wise product of its inputs (broadcasting)", "operator:mul"),
    OpDef(
        name="concat",
        doc="concatenates its inputs along `dim` (torch.cat); dims count the batch as 0",
        params=(Int("dim", 1),),
        infer=_concat_infer,
        emit=FunctionEmit("torch:cat", lambda call: {"dim": call.args["dim"]}, inputs="list"),
        arity=(2, None),
        category="merge",
    ),
)
