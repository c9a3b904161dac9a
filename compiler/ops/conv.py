"""Convolutions and pooling: conv1d, conv2d, maxpool2d, avgpool2d, adaptive_avgpool2d."""

from __future__ import annotations

from .core import (
    Bool,
    Call,
    Int,
    IntOrPair,
    ModuleEmit,
    OpDef,
    Param,
    ShapeError,
    TensorType,
    expect_float,
    expect_rank,
)

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


def _spatial(value: int | list[int], dims: int, param: str) -> tuple[int, ...]:
    """An int or a list of `dims` ints → a tuple of `dims` ints."""
    if isinstance(value, int):
        return (value,) * dims
    if len(value) != dims:
        raise ShapeError(f"'{param}' needs {dims} value(s) here, got {list(value)}", param)
    return tuple(value)


def _conv_geometry(call: Call, dims: int) -> tuple[tuple[int, ...], ...]:
    args = call.args
    kernel = _spatial(args["kernel"], dims, "kernel")
    stride = _spatial(args["stride"], dims, "stride")
    dilation = _spatial(args["dilation"], dims, "dilation")
    padding = args["padding"]
    if padding == "valid":
        padding = (0,) * dims
    elif padding == "same":
        if any(s != 1 for s in stride):
            raise ShapeError("padding 'same' needs stride 1", "padding")
        padding = tuple(d * (k - 1) // 2 for d, k in zip(dilation, kernel))
    else:
        padding = _spatial(padding, dims, "padding")
    return kernel, stride, padding, dilation


def _window_out(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil: bool = False) -> int:
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil else 0)) // stride + 1
    if ceil and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _conv_infer(dims: int):
    def infer(call: Call) -> TensorType:
        x = call.x
        expect_rank(x, (dims + 1,), f"[channels, {', '.join('HW'[-dims:] if dims == 2 else 'L')}]")
        expect_float(x)
        channels, groups, out = x.shape[0], call.args["groups"], call.args["out"]
        if channels % groups or out % groups:
            raise ShapeError(f"groups={groups} must divide both in_channels={channels} and out={out}", "groups")
        kernel, stride, padding, dilation = _conv_geometry(call, dims)
        if call.args["padding"] == "same":
            spatial = x.shape[1:]
        else:
            spatial = tuple(_window_out(*g) for g in zip(x.shape[1:], kernel, stride, padding, dilation))
        if any(s < 1 for s in spatial):
            raise ShapeError(f"input {list(x.shape)} is too small for kernel {list(kernel)}: output {list(spatial)}", "kernel")
        return x.with_shape((out, *spatial))

    return infer


def _kernel_volume(call: Call, dims: int) -> int:
    volume = 1
    for k in _spatial(call.args["kernel"], dims, "kernel"):
        volume *= k
    return volume


def _conv_op(dims: int) -> OpDef:
    torch_name = f"Conv{dims}d"

    def count_params(call: Call) -> int:
        out = call.args["out"]
        weights = out * (call.x.shape[0] // call.args["groups"]) * _kernel_volume(call, dims)
        return weights + (out if call.args["bias"] else 0)

    def count_macs(call: Call, y: TensorType) -> int:
        return y.numel() * (call.x.shape[0] // call.args["groups"]) * _kernel_volume(call, dims)

    def kwargs(call: Call) -> dict:
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

    spatial = IntOrPair if dims == 2 else Int
    return OpDef(
        name=f"conv{dims}d",
        doc=f"{dims}-D convolution (torch.nn.{torch_name}); in_channels is inferred",
        params=(
            Int("out", minimum=1, doc="output channels"),
            spatial("kernel", minimum=1, doc="kernel size"),
            spatial("stride", 1, minimum=1),
            _PADDING,
            spatial("dilation", 1, minimum=1),
            Int("groups", 1, minimum=1),
            Bool("bias", True),
        ),
        infer=_conv_infer(dims),
        emit=ModuleEmit(f"torch.nn:{torch_name}", kwargs),
        count_params=count_params,
        count_macs=count_macs,
    )


_STRIDE_DEFAULT_KERNEL = Param(
    "stride",
    {
        "anyOf": [
            {"type": "integer", "minimum": 1},
            {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2, "maxItems": 2},
            {"type": "null"},
        ]
    },
    None,
    "defaults to the kernel size",
)


def _pool_infer(call: Call) -> TensorType:
    x = call.x
    expect_rank(x, (3,), "[channels, H, W]")
    expect_float(x)
    kernel = _spatial(call.args["kernel"], 2, "kernel")
    stride = kernel if call.args["stride"] is None else _spatial(call.args["stride"], 2, "stride")
    padding = _spatial(call.args["padding"], 2, "padding")
    dilation = _spatial(call.args.get("dilation", 1), 2, "dilation")
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        raise ShapeError(f"padding {list(padding)} must be at most half the kernel {list(kernel)}", "padding")
    ceil = call.args["ceil_mode"]
    spatial = tuple(_window_out(*g, ceil) for g in zip(x.shape[1:], kernel, stride, padding, dilation))
    if any(s < 1 for s in spatial):
        raise ShapeError(f"input {list(x.shape)} is too small for kernel {list(kernel)}: output {list(spatial)}", "kernel")
    return x.with_shape((x.shape[0], *spatial))


def _pool_kwargs(call: Call) -> dict:
    return {key: call.args[key] for key in call.args if key != "kernel"} | {"kernel_size": call.args["kernel"]}


MAXPOOL2D = OpDef(
    name="maxpool2d",
    doc="2-D max pooling (torch.nn.MaxPool2d)",
    params=(
        IntOrPair("kernel", minimum=1),
        _STRIDE_DEFAULT_KERNEL,
        IntOrPair("padding", 0),
        IntOrPair("dilation", 1, minimum=1),
        Bool("ceil_mode", False),
    ),
    infer=_pool_infer,
    emit=ModuleEmit("torch.nn:MaxPool2d", _pool_kwargs),
)

AVGPOOL2D = OpDef(
    name="avgpool2d",
    doc="2-D average pooling (torch.nn.AvgPool2d)",
    params=(
        IntOrPair("kernel", minimum=1),
        _STRIDE_DEFAULT_KERNEL,
        IntOrPair("padding", 0),
        Bool("ceil_mode", False),
        Bool("count_include_pad", True),
    ),
    infer=_pool_infer,
    emit=ModuleEmit("torch.nn:AvgPool2d", _pool_kwargs),
)


def _adaptive_infer(call: Call) -> TensorType:
    expect_rank(call.x, (3,), "[channels, H, W]")
    expect_float(call.x)
    return call.x.with_shape((call.x.shape[0], *_spatial(call.args["size"], 2, "size")))


ADAPTIVE_AVGPOOL2D = OpDef(
    name="adaptive_avgpool2d",
    doc="2-D adaptive average pooling to a fixed output size (torch.nn.AdaptiveAvgPool2d)",
    params=(IntOrPair("size", minimum=1, doc="output size"),),
    infer=_adaptive_infer,
    emit=ModuleEmit("torch.nn:AdaptiveAvgPool2d", lambda call: {"output_size": call.args["size"]}),
)

OPS = (_conv_op(1), _conv_op(2), MAXPOOL2D, AVGPOOL2D, ADAPTIVE_AVGPOOL2D)
