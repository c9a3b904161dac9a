"""Batch values: a tensor, or tensors by name (a model's several inputs, or the targets of its several
outputs). Every step of the loops goes through these, so one input and many read the same."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Union

import torch
from torch import nn
from torch.utils.data import default_collate

Value = Union[torch.Tensor, dict[str, torch.Tensor]]  # noqa: UP007 - a runtime alias on Python 3.10


def take(value: Value, index: torch.Tensor) -> Value:
    return {name: tensor[index] for name, tensor in value.items()} if isinstance(value, dict) else value[index]


def to(value: Value, device: torch.device) -> Value:
    if isinstance(value, dict):
        return {name: tensor.to(device, non_blocking=True) for name, tensor in value.items()}
    return value.to(device, non_blocking=True)


def pinned(value: Value) -> Value:
    """CPU tensors in page-locked memory, from which a copy to a GPU is asynchronous (`non_blocking`)."""
    return {name: tensor.pin_memory() for name, tensor in value.items()} if isinstance(value, dict) else value.pin_memory()


def pinned_rows(value: Value, index: torch.Tensor) -> Value:
    """Rows `index` of CPU tensors, in page-locked memory for the copy to a GPU that follows: a view of
    a pinned tensor where the rows are consecutive (no copy on the CPU), else gathered and pinned."""
    first, count = int(index[0]), len(index)
    consecutive = bool((index.diff() == 1).all())

    def rows(tensor: torch.Tensor) -> torch.Tensor:
        return tensor[first : first + count] if consecutive and tensor.is_pinned() else tensor[index].pin_memory()

    return {name: rows(tensor) for name, tensor in value.items()} if isinstance(value, dict) else rows(value)


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


def collate_channels_last(items: list[tuple[Any, Any]]) -> tuple[Any, Any]:
    """A DataLoader's `collate_fn` for channels-last runs: `[C, H, W]` images stacked as `[B, H, W, C]`
    in memory (in the worker, into shared memory, with the one copy `default_collate` makes anyway) and
    handed on as the `[B, C, H, W]` view of it, which is channels-last: pinning and the copy to the
    device keep that layout, so no conversion runs on the device. Other samples as `default_collate`."""
    images = all(isinstance(sample, torch.Tensor) and sample.dim() == 3 for sample, _ in items)
    if not images:
        return default_collate(items)
    inputs, targets = default_collate([(sample.permute(1, 2, 0), target) for sample, target in items])
    return inputs.permute(0, 3, 1, 2), targets


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
