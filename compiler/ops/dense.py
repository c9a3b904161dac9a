"""Layers with weights that are not convolutions: linear, embedding, normalisation; dropout and stochastic depth."""

from __future__ import annotations

from .core import (
    INT_DTYPES,
    Bool,
    Call,
    Choice,
    Float,
    Int,
    ModuleEmit,
    OpDef,
    Param,
    ShapeError,
    TensorType,
    expect_float,
    expect_rank,
)
from .sample import FLOAT32_ONLY, KEEPS_FLOATS, KEEPS_NORM_FLOATS, DtypeCase, Sample, dtype_rule

_SEQUENCE = {"x": ("T", 8)}


def _linear_infer(call: Call) -> TensorType:
    if call.x.rank < 1:
        raise ShapeError("expects at least one feature dimension per sample, got a scalar per sample")
    expect_float(call.x)
    return call.x.with_shape((*call.x.shape[:-1], call.args["out"]))


LINEAR = OpDef(
    name="linear",
    doc="fully connected layer over the last dimension (torch.nn.Linear); in_features is inferred",
    params=(Int("out", minimum=1, doc="output features"), Bool("bias", True)),
    infer=_linear_infer,
    emit=ModuleEmit(
        "torch.nn:Linear",
        lambda call: {"in_features": call.x.shape[-1], "out_features": call.args["out"], "bias": call.args["bias"]},
    ),
    count_params=lambda call: call.x.shape[-1] * call.args["out"] + (call.args["out"] if call.args["bias"] else 0),
    count_macs=lambda call, y: call.x.shape[-1] * y.numel(),
    unbatched=True,
    weights=lambda call: {"weight": (call.args["out"], call.x.shape[-1])} | ({"bias": (call.args["out"],)} if call.args["bias"] else {}),
    export_limits=(),
    view=False,
    sample=Sample(_SEQUENCE, FLOAT32_ONLY, {"out": 4}),
)


def _embedding_infer(call: Call) -> TensorType:
    if call.x.dtype not in INT_DTYPES:
        raise ShapeError(f"expects integer indices, got {call.x.dtype} (declare the input with dtype: int64)")
    padding_idx = call.args["padding_idx"]
    if padding_idx is not None and not -call.args["num"] <= padding_idx < call.args["num"]:
        raise ShapeError(f"padding_idx {padding_idx} is outside the {call.args['num']} embeddings", "padding_idx")
    if call.x.bound is not None and call.x.bound > call.args["num"]:
        raise ShapeError(f"its input holds indices up to {call.x.bound - 1}, but the table has {call.args['num']} rows", "num")
    return TensorType((*call.x.shape, call.args["dim"]), "float32", call.x.batched)


EMBEDDING = OpDef(
    name="embedding",
    doc="lookup table of `num` vectors of size `dim` (torch.nn.Embedding)",
    params=(
        Int("num", minimum=1, doc="number of embeddings (vocabulary size)"),
        Int("dim", minimum=1, doc="size of each embedding vector"),
        Param("padding_idx", {"type": ["integer", "null"]}, None),
    ),
    infer=_embedding_infer,
    emit=ModuleEmit(
        "torch.nn:Embedding",
        lambda call: {"num_embeddings": call.args["num"], "embedding_dim": call.args["dim"], "padding_idx": call.args["padding_idx"]},
    ),
    count_params=lambda call: call.args["num"] * call.args["dim"],
    unbatched=True,
    weights=lambda call: {"weight": (call.args["num"], call.args["dim"])},
    export_limits=(),
    view=False,
    sample=Sample({"x": ("T",)}, dtype_rule(lambda dtype: "float32" if dtype in INT_DTYPES else None), {"num": 10, "dim": 4}, "int64"),
)


def _batchnorm_op(dims: int, shapes: tuple[int, ...], layout: str, sample: Sample) -> OpDef:
    def infer(call: Call) -> TensorType:
        expect_rank(call.x, shapes, layout)
        expect_float(call.x)
        return call.x

    def kwargs(call: Call) -> dict:
        args = call.args
        return {"num_features": call.x.shape[0], "eps": args["eps"], "momentum": args["momentum"], "affine": args["affine"]}

    return OpDef(
        name=f"batchnorm{dims}d",
        doc=f"batch normalisation over channels (torch.nn.BatchNorm{dims}d); num_features is inferred",
        params=(Float("eps", 1e-5, minimum=0), Float("momentum", 0.1, minimum=0, maximum=1), Bool("affine", True)),
        infer=infer,
        emit=ModuleEmit(f"torch.nn:BatchNorm{dims}d", kwargs),
        count_params=lambda call: 2 * call.x.shape[0] if call.args["affine"] else 0,
        float32_state=lambda call: True,  # its running statistics
        half_inputs=True,
        export_limits=(),
        view=False,
        sample=sample,
    )


def _normalized_shape(call: Call) -> tuple[int, ...]:
    dims = call.args["dims"]
    if dims > call.x.rank:
        raise ShapeError(f"cannot normalise the last {dims} dims of a rank-{call.x.rank} sample {list(call.x.shape)}", "dims")
    return call.x.shape[-dims:]


def _layernorm_params(call: Call) -> int:
    size = 1
    for d in _normalized_shape(call):
        size *= d
    return (size + (size if call.args["bias"] else 0)) if call.args["affine"] else 0


def _layernorm_infer(call: Call) -> TensorType:
    expect_float(call.x)
    _normalized_shape(call)
    return call.x


LAYERNORM = OpDef(
    name="layernorm",
    doc="layer normalisation over the last `dims` dimensions (torch.nn.LayerNorm); the shape is inferred",
    params=(
        Int("dims", 1, minimum=1, doc="how many trailing dimensions to normalise"),
        Float("eps", 1e-5, minimum=0),
        Bool("affine", True, doc="a learnable scale (weight)"),
        Bool("bias", True, doc="a learnable shift (bias); only with affine"),
    ),
    infer=_layernorm_infer,
    emit=ModuleEmit(
        "torch.nn:LayerNorm",
        lambda call: {
            "normalized_shape": list(_normalized_shape(call)),
            "eps": call.args["eps"],
            "elementwise_affine": call.args["affine"],
            "bias": call.args["bias"] and call.args["affine"],
        },
    ),
    count_params=_layernorm_params,
    unbatched=True,
    half_inputs=True,
    export_limits=(),
    view=False,
    sample=Sample(_SEQUENCE, KEEPS_NORM_FLOATS),
)


def _layernorm2d_infer(call: Call) -> TensorType:
    expect_rank(call.x, (3,), "[channels, H, W]")
    expect_float(call.x)
    return call.x


LAYERNORM2D = OpDef(
    name="layernorm2d",
    doc="layer normalisation over the channels of [channels, H, W] (torchvision's LayerNorm2d, as in ConvNeXt)",
    params=(Float("eps", 1e-5, minimum=0), Bool("affine", True)),
    infer=_layernorm2d_infer,
    emit=ModuleEmit(
        "nncompile.compiler.nn:LayerNorm2d",
        lambda call: {"normalized_shape": call.x.shape[0], "eps": call.args["eps"], "elementwise_affine": call.args["affine"]},
    ),
    count_params=lambda call: 2 * call.x.shape[0] if call.args["affine"] else 0,
    half_inputs=True,
    export_limits=(),
    view=False,
    sample=Sample({"x": (3, "T", "T")}, KEEPS_NORM_FLOATS),
)


def _groupnorm_infer(call: Call) -> TensorType:
    expect_float(call.x)
    if call.x.rank < 1:
        raise ShapeError("expects [channels, ...] per sample")
    if call.x.shape[0] % call.args["groups"]:
        raise ShapeError(f"groups={call.args['groups']} must divide the {call.x.shape[0]} channels", "groups")
    return call.x


GROUPNORM = OpDef(
    name="groupnorm",
    doc="group normalisation (torch.nn.GroupNorm); num_channels is inferred",
    params=(Int("groups", minimum=1), Float("eps", 1e-5, minimum=0), Bool("affine", True)),
    infer=_groupnorm_infer,
    emit=ModuleEmit(
        "torch.nn:GroupNorm",
        lambda call: {
            "num_groups": call.args["groups"],
            "num_channels": call.x.shape[0],
            "eps": call.args["eps"],
            "affine": call.args["affine"],
        },
    ),
    count_params=lambda call: 2 * call.x.shape[0] if call.args["affine"] else 0,
    half_inputs=True,
    export_limits=(),
    view=False,
    sample=Sample({"x": (4, "T", "T")}, KEEPS_NORM_FLOATS, {"groups": 2}),
)


def _floats_unless_trivial(call: Call) -> TensorType:
    """Dropping needs floats, except at p 0 and 1, where torch keeps or zeroes any tensor."""
    if call.args["p"] not in (0, 1):
        expect_float(call.x)
    return call.x


DROPOUT = OpDef(
    name="dropout",
    doc="zeroes elements with probability p while training (torch.nn.Dropout)",
    params=(Float("p", 0.5, minimum=0, maximum=1),),
    infer=_floats_unless_trivial,
    emit=ModuleEmit("torch.nn:Dropout", lambda call: {"p": call.args["p"]}),
    unbatched=True,
    export_limits=(),
    view=False,
    sample=Sample(
        _SEQUENCE, KEEPS_FLOATS, {"p": 0.1}, cases=(DtypeCase(("int64",), "int64", {"p": 0.0}), DtypeCase(("bool",), "bool", {"p": 1.0}))
    ),
)

STOCHASTIC_DEPTH = OpDef(
    name="stochastic_depth",
    doc="drops a residual branch per sample (row) or per batch while training, identity in eval (torchvision.ops.StochasticDepth)",
    params=(Float("p", minimum=0, maximum=1, doc="drop probability"), Choice("mode", ("row", "batch"), "row")),
    infer=_floats_unless_trivial,
    emit=ModuleEmit("nncompile.compiler.nn:StochasticDepth", lambda call: {"p": call.args["p"], "mode": call.args["mode"]}),
    export_limits=(),
    view=False,
    sample=Sample(_SEQUENCE, KEEPS_FLOATS, {"p": 0.1}),
)

OPS = (
    LINEAR,
    EMBEDDING,
    _batchnorm_op(1, (1, 2), "[channels] or [channels, L]", Sample({"x": (3, "T")}, KEEPS_NORM_FLOATS)),
    _batchnorm_op(2, (3,), "[channels, H, W]", Sample({"x": (3, "T", "T")}, KEEPS_NORM_FLOATS)),
    LAYERNORM,
    LAYERNORM2D,
    GROUPNORM,
    DROPOUT,
    STOCHASTIC_DEPTH,
)
