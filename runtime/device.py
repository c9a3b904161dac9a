"""Device decisions: where a run trains, in which autocast precision, and whether channels_last helps."""

from __future__ import annotations

import torch
from torch import nn

from .config import TrainError


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
