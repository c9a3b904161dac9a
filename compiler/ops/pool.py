"""Pooling and resampling: max and average pooling (1-D, 2-D), adaptive average pooling, upsample."""

from __future__ import annotations

import math
from typing import Any

from ..dims import is_symbolic, lift
from ..targets import ExportLimit, ExportTarget
from .core import Bool, Call, Choice, Int, IntOrPair, ModuleEmit, OpDef, Param, ShapeError, TensorType, expect_float, expect_rank
from .geometry import check_positive, spatial, window_out
from .sample import KEEPS_FLOATS, Sample


def _stride_default_kernel(dims: int) -> Param:
    item = {"type": "integer", "minimum": 1}
    alternatives = [item, {"type": "null"}]
    if dims == 2:
        alternatives.insert(1, {"type": "array", "items": item, "minItems": 2, "maxItems": 2})
    return Param("stride", {"anyOf": alternatives}, None, "defaults to the kernel size")


def _layout(dims: int) -> str:
    return "[channels, H, W]" if dims == 2 else "[channels, L]"


def _pool_infer(dims: int):
    def infer(call: Call) -> TensorType:
        x = call.x
        expect_rank(x, (dims + 1,), _layout(dims))
        expect_float(x)
        kernel = spatial(call.args["kernel"], dims, "kernel")
        stride = kernel if call.args["stride"] is None else spatial(call.args["stride"], dims, "stride")
        padding = spatial(call.args["padding"], dims, "padding")
        dilation = spatial(call.args.get("dilation", 1), dims, "dilation")
        if any(p > k // 2 for p, k in zip(padding, kernel)):
            raise ShapeError(f"padding {list(padding)} must be at most half the kernel {list(kernel)}", "padding")
        ceil = call.args["ceil_mode"]
        out = tuple(window_out(*g, ceil) for g in zip(x.shape[1:], kernel, stride, padding, dilation))
        check_positive(call, out, kernel)
        return x.with_shape((x.shape[0], *out))

    return infer


def _ceil_over_symbolic(call: Call) -> bool:
    return bool(call.args["ceil_mode"]) and is_symbolic(call.x.shape[1:])


_CEIL_EXPORT = ExportLimit(
    ExportTarget.EXPORT,
    _ceil_over_symbolic,
    "ceil_mode over a symbolic size: torch.export fixes the size (set ceil_mode: false, or fix the size with --set)",
)
_CEIL_ONNX = ExportLimit(
    ExportTarget.ONNX,
    _ceil_over_symbolic,
    "ceil_mode over a symbolic size: the ONNX model fails at other sizes (fix the size with --set)",
)


def _adaptive_over_symbolic(call: Call) -> bool:
    size = call.args["size"]
    sizes = size if isinstance(size, list) else [size] * (len(call.x.shape) - 1)
    return any(is_symbolic(dim) and out != 1 for dim, out in zip(call.x.shape[1:], sizes))


_ADAPTIVE_ONNX = ExportLimit(
    ExportTarget.ONNX,
    _adaptive_over_symbolic,
    "adaptive pooling to a size other than 1 over a symbolic size: ONNX fixes its windows at the example size "
    "(fix the size with --set, or pool to 1)",
)


def _pool_kwargs(call: Call) -> dict:
    return {key: call.args[key] for key in call.args if key != "kernel"} | {"kernel_size": call.args["kernel"]}


def _maxpool(dims: int, sample: Sample) -> OpDef:
    spatial_param = IntOrPair if dims == 2 else Int
    return OpDef(
        name=f"maxpool{dims}d",
        doc=f"{dims}-D max pooling (torch.nn.MaxPool{dims}d)",
        params=(
            spatial_param("kernel", minimum=1),
            _stride_default_kernel(dims),
            spatial_param("padding", 0, minimum=0),
            spatial_param("dilation", 1, minimum=1),
            Bool("ceil_mode", False),
        ),
        infer=_pool_infer(dims),
        emit=ModuleEmit(f"torch.nn:MaxPool{dims}d", _pool_kwargs),
        export_limits=(_CEIL_EXPORT, _CEIL_ONNX) if dims == 1 else (_CEIL_EXPORT,),
        view=False,
        sample=sample,
    )


def _avgpool(dims: int, sample: Sample) -> OpDef:
    spatial_param = IntOrPair if dims == 2 else Int
    return OpDef(
        name=f"avgpool{dims}d",
        doc=f"{dims}-D average pooling (torch.nn.AvgPool{dims}d)",
        params=(
            spatial_param("kernel", minimum=1),
            _stride_default_kernel(dims),
            spatial_param("padding", 0, minimum=0),
            Bool("ceil_mode", False),
            Bool("count_include_pad", True),
        ),
        infer=_pool_infer(dims),
        emit=ModuleEmit(f"torch.nn:AvgPool{dims}d", _pool_kwargs),
        export_limits=(_CEIL_EXPORT,),
        view=False,
        sample=sample,
    )


def _adaptive(dims: int, sample: Sample) -> OpDef:
    def infer(call: Call) -> TensorType:
        expect_rank(call.x, (dims + 1,), _layout(dims))
        expect_float(call.x)
        return call.x.with_shape((call.x.shape[0], *spatial(call.args["size"], dims, "size")))

    return OpDef(
        name=f"adaptive_avgpool{dims}d",
        doc=f"{dims}-D adaptive average pooling to a fixed output size (torch.nn.AdaptiveAvgPool{dims}d)",
        params=((IntOrPair if dims == 2 else Int)("size", minimum=1, doc="output size"),),
        infer=infer,
        emit=ModuleEmit(f"torch.nn:AdaptiveAvgPool{dims}d", lambda call: {"output_size": call.args["size"]}),
        export_limits=(_ADAPTIVE_ONNX,),
        view=False,
        sample=sample,
    )


_MODES = {"nearest": (2, 3, 4), "linear": (2,), "bilinear": (3,), "bicubic": (3,), "trilinear": (4,), "nearest-exact": (2, 3, 4)}


def _scaled(size: int, factor: float) -> int:
    return math.floor(size * factor)


_scaled_size = lift(_scaled)


def _upsample_infer(call: Call) -> TensorType:
    x, mode = call.x, call.args["mode"]
    expect_rank(x, _MODES[mode], f"[channels, L], [channels, H, W] or [channels, D, H, W] as mode '{mode}' needs")
    expect_float(x)
    size, scale = call.args["size"], call.args["scale"]
    if (size is None) == (scale is None):
        raise ShapeError("give exactly one of 'size' and 'scale'", "size" if size is not None else "scale")
    if call.args["align_corners"] is not None and mode not in ("linear", "bilinear", "bicubic", "trilinear"):
        raise ShapeError(f"'align_corners' applies to linear modes, not '{mode}'", "align_corners")
    dims = x.rank - 1
    if size is not None:
        out = spatial(size, dims, "size")
    else:
        factors = (scale,) * dims if isinstance(scale, (int, float)) else tuple(scale)
        if len(factors) != dims:
            raise ShapeError(f"'scale' needs {dims} value(s) here, got {list(factors)}", "scale")
        out = tuple(_scaled_size(s, f) for s, f in zip(x.shape[1:], factors))
    check_positive(call, out, ())
    return x.with_shape((x.shape[0], *out))


_NUMBER_OR_PAIR = {
    "anyOf": [
        {"type": "number", "exclusiveMinimum": 0},
        {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0}, "minItems": 1, "maxItems": 3},
        {"type": "null"},
    ]
}
_SIZE_OR_PAIR = {
    "anyOf": [
        {"type": "integer", "minimum": 1},
        {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1, "maxItems": 3},
        {"type": "null"},
    ]
}


def _tuple(value: Any) -> Any:
    """A per-dimension list as the tuple nn.Upsample takes (it reads a list as one number)."""
    return tuple(value) if isinstance(value, list) else value


UPSAMPLE = OpDef(
    name="upsample",
    doc="resizes the 1, 2 or 3 spatial dimensions by a scale factor or to a size (torch.nn.Upsample)",
    params=(
        Param("scale", _NUMBER_OR_PAIR, None, "scale factor (output size = floor(size × scale))"),
        Param("size", _SIZE_OR_PAIR, None, "output size"),
        Choice("mode", tuple(_MODES), "nearest"),
        Param("align_corners", {"type": ["boolean", "null"]}, None, "for linear modes"),
    ),
    infer=_upsample_infer,
    emit=ModuleEmit(
        "torch.nn:Upsample",
        lambda call: {
            "size": _tuple(call.args["size"]),
            "scale_factor": _tuple(call.args["scale"]),
            "mode": call.args["mode"],
            "align_corners": call.args["align_corners"],
        },
    ),
    export_limits=(),
    view=False,
    sample=Sample({"x": (3, "T", "T")}, KEEPS_FLOATS, {"scale": 2, "mode": "bilinear", "align_corners": False}),
)

_LINE, _MAP = {"x": (3, "T")}, {"x": (3, "T", "T")}
OPS = (
    _maxpool(1, Sample(_LINE, KEEPS_FLOATS, {"kernel": 3, "stride": 2, "ceil_mode": True})),
    _maxpool(2, Sample(_MAP, KEEPS_FLOATS, {"kernel": 3, "stride": 2, "padding": 1})),
    _avgpool(1, Sample(_LINE, KEEPS_FLOATS, {"kernel": 2})),
    _avgpool(2, Sample(_MAP, KEEPS_FLOATS, {"kernel": 2, "count_include_pad": False, "padding": 1})),
    _adaptive(1, Sample(_LINE, KEEPS_FLOATS, {"size": 4})),
    _adaptive(2, Sample(_MAP, KEEPS_FLOATS, {"size": 1})),
    UPSAMPLE,
)
