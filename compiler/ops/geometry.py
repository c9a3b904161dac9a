"""Window arithmetic shared by convolutions and pooling, exact on ints and on symbolic sizes."""

from __future__ import annotations

from typing import Any

from ..dims import lift
from .core import Call, ShapeError


def spatial(value: int | list[int], dims: int, param: str) -> tuple[int, ...]:
    """An int or a list of `dims` ints → a tuple of `dims` ints."""
    if isinstance(value, int):
        return (value,) * dims
    if len(value) != dims:
        raise ShapeError(f"'{param}' needs {dims} value(s) here, got {list(value)}", param)
    return tuple(value)


def _window_out(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil: bool) -> int:
    """torch's output size of a sliding window (convolution or pooling) along one dimension."""
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil else 0)) // stride + 1
    if ceil and (out - 1) * stride >= size + pad:
        out -= 1
    return out


window_out = lift(_window_out)


def _transposed_out(size: int, kernel: int, stride: int, pad: int, dilation: int, output_padding: int) -> int:
    return (size - 1) * stride - 2 * pad + dilation * (kernel - 1) + output_padding + 1


transposed_out = lift(_transposed_out)


def check_positive(call: Call, spatial_out: tuple[Any, ...], kernel: tuple[int, ...]) -> None:
    """An output with a dimension below 1 means the input is too small for the window."""
    if any(s < 1 for s in spatial_out):
        raise ShapeError(f"input {list(call.x.shape)} is too small for kernel {list(kernel)}: output {list(spatial_out)}", "kernel")


def volume(values: tuple[int, ...]) -> int:
    total = 1
    for v in values:
        total *= v
    return total
