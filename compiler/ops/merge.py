"""Merges: element-wise add, mul, sub, div (broadcasting, or one input and a constant `value`), and concat."""

from __future__ import annotations

from .core import (
    Call,
    FunctionEmit,
    Int,
    OpDef,
    Param,
    ShapeError,
    TensorType,
    axis_of,
    broadcast,
    describe_shape,
    expect_no_bool,
    result_dtype,
)
from .sample import KEEPS_ANY, KEEPS_FLOATS_ELSE_FLOAT32, KEEPS_NUMBERS, DtypeCase, Sample

_VALUE = Param("value", {"type": ["number", "null"]}, None, "a constant operand, for a single input")


def _arithmetic_infer(name: str):
    def infer(call: Call) -> TensorType:
        if name == "sub":
            for x in call.inputs:
                expect_no_bool(x)
        t = broadcast(call.inputs)
        dtype = result_dtype([x.dtype for x in call.inputs], call.args["value"], true_division=name == "div")
        return TensorType(t.shape, dtype, t.batched)

    return infer


def _arithmetic(name: str, doc: str, symbol: str, most: int | None, sample: Sample) -> OpDef:
    return OpDef(
        name=name,
        doc=f"{doc} (broadcasting like torch; one input and a constant `value` gives x {symbol} value)",
        params=(_VALUE,),
        infer=_arithmetic_infer(name),
        emit=FunctionEmit(f"operator:{name if name != 'div' else 'truediv'}", inputs="fold", operand=lambda call: call.args["value"]),
        arity=lambda args: (1, 1) if args.get("value") is not None else (2, most),
        category="merge",
        unbatched=True,
        export_limits=(),
        view=False,
        sample=sample,
    )


_PAIR = {"x": ("T", 8), "y": ("T", 8)}
_ADD = Sample(
    _PAIR,
    KEEPS_ANY,
    cases=(
        DtypeCase(("bool",), "int64", {"value": 1}),
        DtypeCase(("bool",), "float32", {"value": 0.5}),
        DtypeCase(("bool", "int32"), "int32"),
        DtypeCase(("bool", "int32", "float16"), "float16"),
        DtypeCase(("int32",), "int32", {"value": 1}),
        DtypeCase(("int32",), "float32", {"value": 2.0}),
        DtypeCase(("float16",), "float16", {"value": 0.5}),
        DtypeCase(("float16", "bfloat16"), "float32"),
        DtypeCase(("int64", "bfloat16"), "bfloat16"),
    ),
)
_MUL = Sample(
    {"x": ("T", 8)},
    KEEPS_FLOATS_ELSE_FLOAT32,
    {"value": 0.5},
    cases=(
        DtypeCase(("bool", "bool"), "bool", {}),
        DtypeCase(("bool",), "int64", {"value": 2}),
        DtypeCase(("bool", "int32"), "int32", {}),
        DtypeCase(("bool", "float64"), "float64", {}),
    ),
)
_SUB = Sample(
    _PAIR,
    KEEPS_NUMBERS,
    cases=(
        DtypeCase(("bool", "float32"), None),
        DtypeCase(("int64", "bool"), None),
        DtypeCase(("bool",), None, {"value": 1}),
        DtypeCase(("int32", "int64"), "int64"),
    ),
)
_DIV = Sample(
    {"x": ("T", 8)},
    KEEPS_FLOATS_ELSE_FLOAT32,
    {"value": 4},
    cases=(DtypeCase(("bool", "bool"), "float32", {}), DtypeCase(("float64", "int32"), "float64", {})),
)
"""add and sub are sampled on two inputs, mul and div on one and a constant."""


def _concat_infer(call: Call) -> TensorType:
    full = [t.full_shape for t in call.inputs]
    listed = ", ".join(describe_shape(t) for t in call.inputs)
    if len({len(shape) for shape in full}) > 1:
        raise ShapeError(f"inputs have different ranks: {listed}")
    batched = any(t.batched for t in call.inputs)
    offset = 1 if batched else 0
    axis = axis_of(call.args["dim"], TensorType(full[0][offset:], batched=batched), "dim") + offset
    if batched and any(not t.batched and shape[0] != 1 for t, shape in zip(call.inputs, full)):
        raise ShapeError(f"a value without a batch dimension needs size 1 in front to join a batch: {listed}")
    reference = next((shape for t, shape in zip(call.inputs, full) if t.batched), full[0])
    for i in range(offset, len(reference)):
        if i != axis and any(shape[i] != reference[i] for shape in full):
            raise ShapeError(f"inputs must match except along dim {call.args['dim']}: {listed}")
    joined = list(reference)
    joined[axis] = sum((shape[axis] for shape in full), 0)
    return TensorType(tuple(joined[offset:]), result_dtype([t.dtype for t in call.inputs]), batched)


def _cat_target(call: Call) -> str:
    return "torch:cat" if all(t.batched for t in call.inputs) or not any(t.batched for t in call.inputs) else "nncompile.compiler.nn:cat"


def _cat_kwargs(call: Call) -> dict:
    kwargs = {"dim": call.args["dim"]}
    if _cat_target(call) == "nncompile.compiler.nn:cat":
        kwargs["batched"] = [t.batched for t in call.inputs]
    return kwargs


CONCAT = OpDef(
    name="concat",
    doc="concatenates its inputs along `dim` (torch.cat); dims count the batch as 0; a learnable tensor joins every sample",
    params=(Int("dim", 1),),
    infer=_concat_infer,
    emit=FunctionEmit(_cat_target, _cat_kwargs, inputs="list"),
    arity=(1, None),
    category="merge",
    unbatched=True,
    export_limits=(),
    view=False,
    sample=Sample(
        _PAIR,
        KEEPS_ANY,
        {"dim": 2},
        cases=(
            DtypeCase(("bool", "int32"), "int32"),
            DtypeCase(("bool", "float16"), "float16"),
            DtypeCase(("int32", "int64", "bool"), "int64"),
        ),
    ),
)

OPS = (
    _arithmetic("add", "element-wise sum of its inputs", "+", None, _ADD),
    _arithmetic("mul", "element-wise product of its inputs", "*", None, _MUL),
    _arithmetic("sub", "the first input minus the second", "-", 2, _SUB),
    _arithmetic("div", "the first input divided by the second", "/", 2, _DIV),
    CONCAT,
)
