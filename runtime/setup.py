"""Setup decisions: the device, the precision, the monitored metrics, and whether data and model fit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .config import TrainError, is_classification, loss_settings
from .data import Data


def pick_device(setting: str) -> torch.device:
    """`auto`: CUDA when present, else CPU."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(setting)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainError(("device",), "CUDA is not available on this machine", "device: auto uses CUDA when there is one", "E0505")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise TrainError(("device",), "MPS is not available on this machine", code="E0505")
    return device


def precision(setting: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype: `auto` is bf16 on GPUs that run it natively (Ampere and later), else fp16
    (with a grad scaler) on CUDA (V100, T4: never bf16 emulated in software), and full precision on
    CPU and MPS."""
    if setting == "off" or (setting == "auto" and device.type != "cuda"):
        return None
    if setting == "bf16" or (setting == "auto" and torch.cuda.is_bf16_supported(including_emulation=False)):
        return torch.bfloat16
    return torch.float16


def conv_model(model: nn.Module) -> bool:
    """Whether channels_last helps: the model has 2-D convolutions."""
    return any(isinstance(module, nn.Conv2d) for module in model.modules())


def scored_classes(data: Data, config: Mapping[str, Any]) -> int | None:
    """The class count that accuracy is scored over, or None when the run is not a classification."""
    return data.num_classes if data.targets_are_labels and is_classification(config) else None


@dataclass
class Monitor:
    """The best value of a metric so far, and for how many epochs it has not improved."""

    metric: str
    mode: str
    min_delta: float = 0.0
    value: float | None = None
    epoch: int | None = None
    bad: int = 0

    @classmethod
    def of(cls, section: Mapping[str, Any], data: Data, config: Mapping[str, Any], where: str = "checkpoint") -> Monitor:
        classes = scored_classes(data, config)
        available = ["train_loss", "val_loss"] + (["val_accuracy"] if classes else []) + (["val_top5"] if classes and classes > 5 else [])
        available += ["val_perplexity"] if data.sequence else []
        metric = section.get("metric", "val_loss" if data.sequence or not classes else "val_accuracy")
        if metric not in available:
            raise TrainError((where, "metric"), f"this run does not measure '{metric}'", f"it measures {', '.join(available)}", "E0502")
        mode = section.get("mode", "min" if metric.endswith(("loss", "perplexity")) else "max")
        return cls(metric, mode, section.get("min_delta", 0.0))

    def update(self, record: Mapping[str, Any]) -> bool:
        """Take an epoch's record; True if it improved on the best."""
        value = record[self.metric]
        better = self.value is None or (value < self.value - self.min_delta if self.mode == "min" else value > self.value + self.min_delta)
        if better:
            self.value, self.epoch, self.bad = value, record["epoch"], 0
        else:
            self.bad += 1
        return better


def check_fit(model: nn.Module, data: Data, config: Mapping[str, Any], loss_fn: nn.Module, device: torch.device) -> None:
    """Refuse, with the setting to change, data whose samples or targets the model cannot take."""
    sample = data.train.sample_shape()
    declared = getattr(model, "nncompile_inputs", None)
    if declared is not None:
        if len(declared) != 1:
            raise TrainError(("data",), f"training feeds one input, but the model has {len(declared)}: {', '.join(declared)}", code="E0502")
        ((name, (shape, _dtype)),) = declared.items()
        if not _fits(shape, sample, getattr(model, "nncompile_sizes", {})):
            hint = f"declare inputs: {{{name}: {list(sample)}}}, or add resize/crop transforms"
            raise TrainError(
                ("data", "dataset"), f"samples are {list(sample)} but the model's input '{name}' is {list(shape)}", hint, "E0502"
            )
    inputs, targets = _first_samples(data)
    model.eval()
    with torch.no_grad():
        output = model(inputs.to(device))
    if not isinstance(output, torch.Tensor):
        raise TrainError(("loss",), f"training needs a model with one output tensor, got {type(output).__name__}", code="E0502")
    name, _ = loss_settings(config)
    if is_classification(config):
        if not data.targets_are_labels:
            raise TrainError(
                ("loss",), f"loss '{name}' needs integer class labels, but the targets are floats", "use mse, l1 or smooth_l1", "E0502"
            )
        classes = _class_count(output, targets)
        if classes is None:
            problem = f"the model outputs {list(output.shape[1:])} per sample but the labels are {list(targets.shape[1:])}"
            raise TrainError(("loss",), f"loss '{name}': {problem}", "scores need one more dim than labels: the classes", "E0502")
        if classes < (data.num_classes or 0):
            hint = "set the model's class count (e.g. --set num_classes=N, or vocab_size for a language model)"
            raise TrainError(("data", "dataset"), f"the model scores {classes} classes, but the data has {data.num_classes}", hint, "E0502")
    elif output.shape[1:] != targets.shape[1:]:
        problem = f"the model outputs {list(output.shape[1:])} per sample but the targets are {list(targets.shape[1:])}"
        raise TrainError(("loss",), f"loss '{name}': {problem}", code="E0502")


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


def _first_samples(data: Data) -> tuple[torch.Tensor, torch.Tensor]:
    split = data.train
    if split.inputs is not None:
        return split.inputs[:2], split.targets[:2]
    pairs = [split.dataset[i] for i in range(min(2, len(split)))]
    targets = [p[1] for p in pairs]
    return torch.stack([p[0] for p in pairs]), torch.stack(targets) if isinstance(targets[0], torch.Tensor) else torch.as_tensor(targets)
