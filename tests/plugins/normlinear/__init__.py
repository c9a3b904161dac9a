"""A test plugin: the seed tutorial's `CustomLinear`, a linear layer whose weight rows are
normalised to unit length before the linear map. This module stays torch-free (so `check`
does); the module class lives in `normlinear.layers`, imported only when building."""

from compiler.ops.core import Bool, Call, Int, ModuleEmit, OpDef, ShapeError, TensorType, expect_float


def _infer(call: Call) -> TensorType:
    if call.x.rank < 1:
        raise ShapeError("expects at least one feature dimension per sample")
    expect_float(call.x)
    return call.x.with_shape((*call.x.shape[:-1], call.args["out"]))


NORMALIZED_LINEAR = OpDef(
    name="normalized_linear",
    doc="linear layer with each weight row normalised to unit L2 norm",
    params=(Int("out", minimum=1), Bool("bias", True)),
    infer=_infer,
    emit=ModuleEmit(
        "normlinear.layers:NormalizedLinear",
        lambda call: {"in_features": call.x.shape[-1], "out_features": call.args["out"], "bias": call.args["bias"]},
    ),
    count_params=lambda call: call.x.shape[-1] * call.args["out"] + (call.args["out"] if call.args["bias"] else 0),
    count_macs=lambda call, y: call.x.shape[-1] * y.numel(),
)

NNCOMPILE_OPS = [NORMALIZED_LINEAR]
