"""Convolutions: conv1d, conv2d and their transposes, conv_transpose1d, conv_transpose2d."""

from __future__ import annotations

from .core import Bool, Call, Int, IntOrPair, ModuleEmit, OpDef, Param, ShapeError, TensorType, expect_float, expect_rank
from .geometry import check_positive, spatial, transposed_out, volume, window_out
from .sample import FLOAT32_ONLY, Sample

_PADDING = Param(
    "padding",
    {
        "anyOf": [
            {"type": "integer", "minimum": 0},
            {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1, "maxItems": 2},
            {"enum": ["same", "valid"]},
        ]
    },
    0,
    "zero padding on each side, or 'same' / 'valid'",
)


def _layout(dims: int) -> str:
    return "[channels, H, W]" if dims == 2 else "[channels, L]"


def _groups(call: Call, channels: int) -> None:
    groups, out = call.args["groups"], call.args["out"]
    if channels % groups or out % groups:
        raise ShapeError(f"groups={groups} must divide both in_channels={channels} and out={out}", "groups")


def _conv_geometry(call: Call, dims: int) -> tuple[tuple[int, ...], ...]:
    args = call.args
    kernel = spatial(args["kernel"], dims, "kernel")
    stride = spatial(args["stride"], dims, "stride")
    dilation = spatial(args["dilation"], dims, "dilation")
    padding = args["padding"]
    if padding == "valid":
        padding = (0,) * dims
    elif padding == "same":
        if any(s != 1 for s in stride):
            raise ShapeError("padding 'same' needs stride 1", "padding")
        padding = tuple(d * (k - 1) // 2 for d, k in zip(dilation, kernel))
    else:  # torch's convolutions repeat a one-item padding list over every dim
        padding = spatial(padding * dims if isinstance(padding, list) and len(padding) == 1 else padding, dims, "padding")
    return kernel, stride, padding, dilation


def _conv_infer(dims: int):
    def infer(call: Call) -> TensorType:
        x = call.x
        expect_rank(x, (dims + 1,), _layout(dims))
        expect_float(x)
        _groups(call, x.shape[0])
        kernel, stride, padding, dilation = _conv_geometry(call, dims)
        if call.args["padding"] == "same":
            out = x.shape[1:]
        else:
            out = tuple(window_out(*g, False) for g in zip(x.shape[1:], kernel, stride, padding, dilation))
        check_positive(call, out, kernel)
        return x.with_shape((call.args["out"], *out))

    return infer


def _conv_kwargs(call: Call) -> dict:
    a = call.args
    return {
        "in_channels": call.x.shape[0],
        "out_channels": a["out"],
        "kernel_size": a["kernel"],
        "stride": a["stride"],
        "padding": a["padding"],
        "dilation": a["dilation"],
        "groups": a["groups"],
        "bias": a["bias"],
    }


def _conv_op(dims: int, sample: Sample) -> OpDef:
    def kernel_volume(call: Call) -> int:
        return volume(spatial(call.args["kernel"], dims, "kernel"))

    def count_params(call: Call) -> int:
        out = call.args["out"]
        return out * (call.x.shape[0] // call.args["groups"]) * kernel_volume(call) + (out if call.args["bias"] else 0)

    spatial_param = IntOrPair if dims == 2 else Int
    return OpDef(
        name=f"conv{dims}d",
        doc=f"{dims}-D convolution (torch.nn.Conv{dims}d); in_channels is inferred",
        params=(
            Int("out", minimum=1, doc="output channels"),
            spatial_param("kernel", minimum=1, doc="kernel size"),
            spatial_param("stride", 1, minimum=1),
            _PADDING,
            spatial_param("dilation", 1, minimum=1),
            Int("groups", 1, minimum=1),
            Bool("bias", True),
        ),
        infer=_conv_infer(dims),
        emit=ModuleEmit(f"torch.nn:Conv{dims}d", _conv_kwargs),
        count_params=count_params,
        count_macs=lambda call, y: y.numel() * (call.x.shape[0] // call.args["groups"]) * kernel_volume(call),
        export_limits=(),
        view=False,
        sample=sample,
    )


def _transpose_infer(dims: int):
    def infer(call: Call) -> TensorType:
        x = call.x
        expect_rank(x, (dims + 1,), _layout(dims))
        expect_float(x)
        _groups(call, x.shape[0])
        a = call.args
        kernel, stride = spatial(a["kernel"], dims, "kernel"), spatial(a["stride"], dims, "stride")
        padding, dilation = spatial(a["padding"], dims, "padding"), spatial(a["dilation"], dims, "dilation")
        extra = spatial(a["output_padding"], dims, "output_padding")
        if any(e >= s and e >= d for e, s, d in zip(extra, stride, dilation)):
            raise ShapeError(f"output_padding {list(extra)} must be smaller than the stride or the dilation", "output_padding")
        out = tuple(transposed_out(*g) for g in zip(x.shape[1:], kernel, stride, padding, dilation, extra))
        check_positive(call, out, kernel)
        return x.with_shape((a["out"], *out))

    return infer


def _transpose_op(dims: int, sample: Sample) -> OpDef:
    def kernel_volume(call: Call) -> int:
        return volume(spatial(call.args["kernel"], dims, "kernel"))

    def count_params(call: Call) -> int:
        out = call.args["out"]
        return call.x.shape[0] * (out // call.args["groups"]) * kernel_volume(call) + (out if call.args["bias"] else 0)

    def kwargs(call: Call) -> dict:
        return {key: value for key, value in _conv_kwargs(call).items() if key != "padding"} | {
            "padding": call.args["padding"],
            "output_padding": call.args["output_padding"],
        }

    spatial_param = IntOrPair if dims == 2 else Int
    return OpDef(
        name=f"conv_transpose{dims}d",
        doc=f"{dims}-D transposed convolution (torch.nn.ConvTranspose{dims}d); in_channels is inferred",
        params=(
            Int("out", minimum=1, doc="output channels"),
            spatial_param("kernel", minimum=1, doc="kernel size"),
            spatial_param("stride", 1, minimum=1),
            spatial_param("padding", 0, minimum=0),
            spatial_param("output_padding", 0, minimum=0, doc="added to one side of the output"),
            spatial_param("dilation", 1, minimum=1),
            Int("groups", 1, minimum=1),
            Bool("bias", True),
        ),
        infer=_transpose_infer(dims),
        emit=ModuleEmit(f"torch.nn:ConvTranspose{dims}d", kwargs),
        count_params=count_params,
        count_macs=lambda call, y: call.x.numel() * (call.args["out"] // call.args["groups"]) * kernel_volume(call),
        export_limits=(),
        view=False,
        sample=sample,
    )


_LINE, _MAP = {"x": (3, "T")}, {"x": (3, "T", "T")}
OPS = (
    _conv_op(1, Sample(_LINE, FLOAT32_ONLY, {"out": 4, "kernel": 3, "padding": 1})),
    _conv_op(2, Sample(_MAP, FLOAT32_ONLY, {"out": 4, "kernel": 3, "stride": 2, "padding": 1})),
    _transpose_op(1, Sample(_LINE, FLOAT32_ONLY, {"out": 4, "kernel": 2, "stride": 2})),
    _transpose_op(2, Sample(_MAP, FLOAT32_ONLY, {"out": 4, "kernel": 3, "stride": 2, "padding": 1, "output_padding": 1})),
)
