"""Batch values: a tensor, or tensors by name (a model's several inputs, or the targets of its several
outputs). Every step of the loops goes through these, so one input and many read the same."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Union

import torch
from torch import nn

Value = Union[torch.Tensor, dict[str, torch.Tensor]]  # noqa: UP007 - a runtime alias on Python 3.10


def take(value: Value, index: torch.Tensor) -> Value:
    return {name: tensor[index] for name, tensor in value.items()} if isinstance(value, dict) else value[index]


def to(value: Value, device: torch.device) -> Value:
    if isinstance(value, dict):
        return {name: tensor.to(device, non_blocking=True) for name, tensor in value.items()}
    return value.to(device, non_blocking=True)


def length(value: Value) -> int:
    return len(next(iter(value.values()))) if isinstance(value, dict) else len(value)


def first(value: Value, count: int) -> Value:
    return {name: tensor[:count] for name, tensor in value.items()} if isinstance(value, dict) else value[:count]


def pad(value: Value, size: int) -> Value:
    """Fill a short batch up to `size` with copies of its last sample."""

    def padded(tensor: torch.Tensor) -> torch.Tensor:
        missing = size - len(tensor)
        return torch.cat([tensor, tensor[-1:].expand(missing, *tensor.shape[1:])]) if missing > 0 else tensor

    return {name: padded(tensor) for name, tensor in value.items()} if isinstance(value, dict) else padded(value)


def channels_last(value: Value, enabled: bool) -> Value:
    def convert(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.contiguous(memory_format=torch.channels_last) if tensor.dim() == 4 else tensor

    if not enabled:
        return value
    return {name: convert(tensor) for name, tensor in value.items()} if isinstance(value, dict) else convert(value)


def run(model: nn.Module, inputs: Value, order: list[str] | None = None) -> Any:
    """The model on a batch: one tensor, or named inputs in `order` (a compiled spec's declared
    inputs), or by keyword (other modules)."""
    if not isinstance(inputs, dict):
        return model(inputs)
    return model(*(inputs[name] for name in order)) if order else model(**inputs)


def input_order(model: nn.Module) -> list[str] | None:
    declared = getattr(model, "nncompile_inputs", None)
    return list(declared) if declared else None


def shapes(value: Value) -> dict[str | None, tuple[int, ...]]:
    """Per-sample shapes by name (None for a lone tensor)."""
    if isinstance(value, Mapping):
        return {name: tuple(tensor.shape[1:]) for name, tensor in value.items()}
    return {None: tuple(value.shape[1:])}
