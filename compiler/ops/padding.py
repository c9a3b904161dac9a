"""`pad`: torch's F.pad (constant, reflect, replicate, circular), or padding one value to another's
size after the channels (U-Net's up blocks)."""

from __future__ import annotations

from typing import Any

from .core import Call, Choice, Float, FunctionEmit, OpDef, Param, ShapeError, TensorType
from .sample import KEEPS_NUMBERS, DtypeCase, Sample

_FILL_RANGES = {
    "float16": (-65504.0, 65504.0),
    "bfloat16": (-3.3895313892515355e38, 3.3895313892515355e38),
    "float32": (-3.4028234663852886e38, 3.4028234663852886e38),
    "int32": (-(2.0**31), 2.0**31 - 1),
    "int64": (-(2.0**63), 2.0**63 - 1),
}
"""The fill values each dtype holds (torch refuses a constant it would overflow)."""


def _pad_infer(call: Call) -> TensorType:
    x, amounts, mode, value = call.x, call.args["amounts"], call.args["mode"], call.args["value"]
    low, high = _FILL_RANGES.get(x.dtype, (-float("inf"), float("inf")))
    if not low <= value <= high:
        raise ShapeError(f"the fill value {value} does not fit the input's {x.dtype}", "value")
    if mode != "constant" and value != 0:
        raise ShapeError(f"{mode} padding takes no fill value", "value")
    if len(call.inputs) == 2:
        return _pad_to_infer(call)
    if amounts is None:
        raise ShapeError("give `amounts` (torch's F.pad order: last dim first), or a second input to pad to", "amounts")
    if len(amounts) % 2:
        raise ShapeError(f"amounts come in pairs (before, after) per dim, last dim first; got {len(amounts)}", "amounts")
    dims = len(amounts) // 2
    if dims > x.rank:
        raise ShapeError(f"{len(amounts)} amounts pad {dims} dims, but a sample has {x.rank} (the batch is never padded)", "amounts")
    if mode != "constant":
        if not 1 <= dims <= 3 or x.rank not in (dims, dims + 1):
            wanted = f"{dims} or {dims + 1}" if dims <= 3 else "at most 4"
            raise ShapeError(f"{mode} padding of {dims} dim(s) takes samples of {wanted} dims, got {list(x.shape)}", "amounts")
        if mode != "circular" and x.dtype == "bool":
            raise ShapeError(f"{mode} padding does not take bool values", "mode")
    shape = list(x.shape)
    for axis, (before, after) in zip(range(x.rank - 1, -1, -1), zip(amounts[::2], amounts[1::2])):
        size = shape[axis]
        if mode == "reflect" and (before >= size or after >= size):
            raise ShapeError(f"reflect padding must be smaller than the size it reflects ({size}), got {before} and {after}", "amounts")
        if mode == "circular" and (abs(before) > size or abs(after) > size):
            raise ShapeError(f"circular padding may wrap around once: at most the size ({size}), got {before} and {after}", "amounts")
        if mode == "constant" and size + min(before, 0) + min(after, 0) < 0:
            raise ShapeError(f"negative padding {before} and {after} crops more than the size ({size})", "amounts")
        shape[axis] = size + before + after
        if shape[axis] < 1:
            raise ShapeError(f"padding {before} and {after} leave nothing of size {size}", "amounts")
    return x.with_shape(tuple(shape))


def _pad_to_infer(call: Call) -> TensorType:
    x, like = call.inputs
    if call.args["amounts"] is not None or call.args["mode"] != "constant":
        raise ShapeError("padding to a second input's size takes no amounts and pads with a constant", "amounts")
    if x.rank != like.rank or x.rank < 2:
        raise ShapeError(f"pads [C, …] to another [C, …] of as many dims, got {list(x.shape)} and {list(like.shape)}")
    if any(size > target for size, target in zip(x.shape[1:], like.shape[1:])):
        raise ShapeError(f"{list(x.shape)} is larger than {list(like.shape)} after the channels: padding cannot shrink it")
    return x.with_shape((x.shape[0], *like.shape[1:]))


def _pad_emit(call: Call) -> dict[str, Any]:
    if len(call.inputs) == 2:
        return {"value": call.args["value"]}
    value = {"value": call.args["value"]} if call.args["mode"] == "constant" else {}
    return {"pad": list(call.args["amounts"]), "mode": call.args["mode"], **value}


PAD = OpDef(
    name="pad",
    doc="pads the last dims by `amounts` in torch's order (last dim first: [left, right, top, bottom]) "
    "with a constant, by reflection, replication or wrapping (F.pad); with a second input, pads the first's dims "
    "after the channels to the second's sizes with a constant, half before (rounded down) and the rest after, as "
    "U-Net's up blocks do",
    params=(
        Param("amounts", {"anyOf": [{"type": "array", "items": {"type": "integer"}, "minItems": 2}, {"type": "null"}]}, None),
        Choice("mode", ("constant", "reflect", "replicate", "circular"), "constant"),
        Float("value", 0.0, doc="the fill of constant padding"),
    ),
    infer=_pad_infer,
    emit=FunctionEmit(lambda call: "nncompile.compiler.nn:pad_to" if len(call.inputs) == 2 else "torch.nn.functional:pad", _pad_emit),
    arity=(1, 2),
    category="tensor",
    export_limits=(),
    view=False,
    sample=Sample(
        {"x": (3, "T", "T")},
        KEEPS_NUMBERS,
        {"amounts": [1, 1, 2, 0], "mode": "reflect"},
        cases=(
            DtypeCase(("bool",), "bool", {"amounts": [1, 1]}),
            DtypeCase(("bool",), "bool", {"amounts": [1, 1, 1, 1], "mode": "circular"}),
        ),
    ),
)

OPS = (PAD,)
