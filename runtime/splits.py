"""A side of the data (train or validation) as the loops read it: resident tensors, or a Dataset read
through a DataLoader, whose image transforms run in two stages: per sample in the workers, then the
steps that compute each value on its own (the conversion to float, normalization) per batch on the
device, after the host-to-device copy, so that uint8 images cross the copy as uint8."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from . import batch
from .transforms import BatchSteps, Stages, pipeline, stages


@dataclass
class Split:
    """One side of the data: resident tensors, or a Dataset whose items are transformed per sample."""

    inputs: batch.Value | None = None
    targets: batch.Value | None = None
    dataset: Dataset | None = None
    """Finished samples, for whoever reads them one at a time."""
    staged: Dataset | None = None
    """What a DataLoader reads for `dataset`: its samples before the per-batch steps, which `finish`
    applies to each batch on the device (None: `dataset` itself, which has no such step)."""
    finish: BatchSteps | None = None
    channels_last: bool = False
    """A DataLoader's batches come out channels-last (`batch.collate_channels_last`)."""

    def __len__(self) -> int:
        return batch.length(self.inputs) if self.inputs is not None else len(self.dataset)

    def sample_shapes(self) -> dict[str | None, tuple[int, ...]]:
        """Per-sample input shapes by name (None for a single unnamed input)."""
        if self.inputs is not None:
            return batch.shapes(self.inputs)
        sample = self.dataset[0][0]
        return {name: tuple(t.shape) for name, t in sample.items()} if isinstance(sample, dict) else {None: tuple(sample.shape)}


class TransformedTensors(Dataset):
    """Tensors whose samples go through a transform one at a time (for augmentation)."""

    def __init__(self, inputs: batch.Value, targets: batch.Value, transform: Callable | None):
        self.inputs, self.targets, self.transform = inputs, targets, transform

    def __len__(self) -> int:
        return batch.length(self.inputs)

    def __getitem__(self, index: int) -> tuple[batch.Value, batch.Value]:
        sample = batch.take(self.inputs, index)
        return (self.transform(sample) if self.transform else sample), batch.take(self.targets, index)


def transformed(inputs: batch.Value, targets: batch.Value, steps: list, from_uint8: bool) -> Split:
    """Tensors transformed per sample, through a DataLoader; images (`[N, C, H, W]`) in two stages."""
    if not steps and not from_uint8:
        return Split(dataset=TransformedTensors(inputs, targets, None))
    if isinstance(inputs, dict) or inputs.dim() != 4:
        return Split(dataset=TransformedTensors(inputs, targets, pipeline(steps, from_uint8=from_uint8)))
    return staged(lambda transform: TransformedTensors(inputs, targets, transform), stages(steps, from_uint8=from_uint8))


def staged(make: Callable[[Callable], Dataset], cut: Stages) -> Split:
    """A Split read through a DataLoader, `make(transform)` its Dataset: with per-batch steps, the
    DataLoader reads the samples before them (`Split.staged`)."""
    if cut.batch is None:
        return Split(dataset=make(cut.sample))
    return Split(dataset=make(cut.whole()), staged=make(cut.sample), finish=cut.batch)


def host(value: batch.Value, device: torch.device) -> batch.Value:
    """Tensors kept on the CPU: pinned for a GPU run, so that their batches copy asynchronously."""
    return batch.pinned(value) if device.type == "cuda" else value


def use_channels_last(*splits: Split) -> None:
    """Images in channels-last layout, converted once: resident tensors now (pinned ones stay pinned),
    a DataLoader's batches as its workers stack them: no batch is converted on the device, step after
    step."""
    for split in splits:
        split.channels_last = True
        if split.inputs is not None:
            tensors = split.inputs.values() if isinstance(split.inputs, dict) else [split.inputs]
            pinned = any(tensor.is_pinned() for tensor in tensors)
            split.inputs = batch.channels_last(split.inputs, True)
            split.inputs = batch.pinned(split.inputs) if pinned else split.inputs
