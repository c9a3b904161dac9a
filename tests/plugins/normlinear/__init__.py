"""A test plugin: the seed tutorial's `CustomLinear`, a linear layer whose weight rows are
normalised to unit length before the linear map. It shares the builtin linear's shape rule and
counts; only its module differs. This module stays torch-free (so `check` does); the module class
lives in `normlinear.layers`, imported only when building."""

from nncompile.compiler.ops.core import ModuleEmit, OpDef
from nncompile.compiler.ops.dense import LINEAR

NORMALIZED_LINEAR = OpDef(
    name="normalized_linear",
    doc="linear layer with each weight row normalised to unit L2 norm",
    params=LINEAR.params,
    infer=LINEAR.infer,
    emit=ModuleEmit("normlinear.layers:NormalizedLinear", LINEAR.emit.kwargs),
    count_params=LINEAR.count_params,
    count_macs=LINEAR.count_macs,
)

NNCOMPILE_OPS = [NORMALIZED_LINEAR]
