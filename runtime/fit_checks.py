"""Checks before the first step: whether the data's samples and targets fit the model, refused with
the setting to change; and the sequence length a model reads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from nncompile.compiler.train_schema import CLASSIFICATION_LOSSES
from torch import nn

from . import batch
from .config import TrainError, loss_settings, per_output
from .data import Data


def check_fit(model: nn.Module, data: Data, config: Mapping[str, Any], loss_fn: nn.Module, device: torch.device) -> None:
    """Refuse, with the setting to change, data whose samples or targets the model cannot take."""
    samples = data.train.sample_shapes()
    declared = getattr(model, "nncompile_inputs", None)
    if declared is not None:
        if list(samples) == [None] and len(declared) != 1:
            message = f"the model has {len(declared)} inputs ({', '.join(declared)}) but the data gives one"
            raise TrainError(("data",), message, "a tensors file with inputs by name: {'inputs': {name: tensor, …}, 'targets': …}", "E0502")
        if list(samples) != [None] and sorted(samples) != sorted(declared):
            message = f"the data's inputs are {', '.join(map(str, samples))} but the model's are {', '.join(declared)}"
            raise TrainError(("data",), message, code="E0502")
        for name, (shape, _dtype) in declared.items():
            sample = samples[None] if list(samples) == [None] else samples[name]
            if not _fits(shape, sample, getattr(model, "nncompile_sizes", {})):
                hint = f"declare inputs: {{{name}: {list(sample)}}}, or add resize/crop transforms"
                raise TrainError(
                    ("data", "dataset"), f"samples are {list(sample)} but the model's input '{name}' is {list(shape)}", hint, "E0502"
                )
    inputs, targets = _first_samples(data)
    model.eval()
    with torch.no_grad():
        output = batch.run(model, batch.to(inputs, device), batch.input_order(model))
    if per_output(config):
        outputs = output if isinstance(output, (tuple, list)) else (output,)
        names = loss_fn.names
        for name, value in config["loss"].items():
            if not isinstance(targets, dict) or name not in targets:
                raise TrainError(("loss", name), f"the data has no targets for output '{name}'", "targets by output name", "E0502")
            kind = value if isinstance(value, str) else value["type"]
            labels = not targets[name].is_floating_point()
            _check_output(outputs[names.index(name)], targets[name].cpu(), kind, labels, data.outputs[name][0], ("loss", name))
        return
    if not isinstance(output, torch.Tensor):
        raise TrainError(("loss",), f"one loss for {len(output)} outputs: give a loss per output, loss: {{name: …}}", code="E0502")
    if isinstance(targets, dict):
        message = f"the targets are by output name ({', '.join(targets)}) but there is one loss"
        raise TrainError(("loss",), message, "give a loss per output, loss: {name: …}", "E0502")
    name, _ = loss_settings(config)
    _check_output(output, targets, name, data.targets_are_labels, data.num_classes, ("loss",))


def _check_output(output: torch.Tensor, targets: torch.Tensor, name: str, labels: bool, classes: int | None, where: tuple) -> None:
    """One output against its targets under loss `name`."""
    output = output.cpu()
    if name in CLASSIFICATION_LOSSES:
        if not labels:
            raise TrainError(
                where, f"loss '{name}' needs integer class labels, but the targets are floats", "use mse, l1 or smooth_l1", "E0502"
            )
        scored = _class_count(output, targets)
        if scored is None:
            problem = f"the model outputs {list(output.shape[1:])} per sample but the labels are {list(targets.shape[1:])}"
            raise TrainError(where, f"loss '{name}': {problem}", "scores need one more dim than labels: the classes", "E0502")
        if scored < (classes or 0):
            hint = "set the model's class count (e.g. --set num_classes=N, or vocab_size for a language model)"
            raise TrainError(("data", "dataset"), f"the model scores {scored} classes, but the data has {classes}", hint, "E0502")
    elif output.shape[1:] != targets.shape[1:]:
        problem = f"the model outputs {list(output.shape[1:])} per sample but the targets are {list(targets.shape[1:])}"
        raise TrainError(where, f"loss '{name}': {problem}", code="E0502")


def _fits(shape: list, sample: tuple[int, ...], sizes: Mapping[str, Mapping[str, int]]) -> bool:
    """Whether a sample shape is one the declared input takes (a symbolic size: within its range)."""
    if len(shape) != len(sample):
        return False
    for want, got in zip(shape, sample):
        if isinstance(want, str):
            size = sizes.get(want)
            if size is None or not size["min"] <= got <= size["max"] or got % size["multiple_of"]:
                return False
        elif want != got:
            return False
    return True


def _class_count(output: torch.Tensor, labels: torch.Tensor) -> int | None:
    """How many classes the scores hold: at dim 1 (`[B, C]`, `[B, C, H, W]`) or last (`[B, T, C]`)."""
    if output.dim() != labels.dim() + 1:
        return None
    if output.dim() > 2 and output.shape[:-1] == labels.shape:
        return output.shape[-1]
    return output.shape[1] if output.shape[:1] + output.shape[2:] == labels.shape else None


def sequence_length(model: nn.Module) -> int | None:
    """A one-input model's sequence length (its input's first size; a symbolic one at its largest)."""
    declared = getattr(model, "nncompile_inputs", None)
    if not declared or len(declared) != 1:
        return None
    ((shape, _dtype),) = declared.values()
    if not shape:
        return None
    first = shape[0]
    return getattr(model, "nncompile_sizes", {}).get(first, {}).get("max") if isinstance(first, str) else first


def _first_samples(data: Data) -> tuple[batch.Value, batch.Value]:
    split = data.train
    if split.inputs is not None:
        return batch.first(split.inputs, 2), batch.first(split.targets, 2)
    pairs = [split.dataset[i] for i in range(min(2, len(split)))]
    return _stacked([p[0] for p in pairs]), _stacked([p[1] for p in pairs])


def _stacked(items: list) -> batch.Value:
    if isinstance(items[0], dict):
        return {name: torch.stack([item[name] for item in items]) for name in items[0]}
    return torch.stack(items) if isinstance(items[0], torch.Tensor) else torch.as_tensor(items)
