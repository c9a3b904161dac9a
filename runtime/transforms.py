"""The `transforms:` lists as torchvision.transforms.v2 pipelines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torchvision.transforms import v2

from compiler.train_schema import TRANSFORMS

_CLASSES = {
    "normalize": v2.Normalize,
    "resize": v2.Resize,
    "center_crop": v2.CenterCrop,
    "random_crop": v2.RandomCrop,
    "random_resized_crop": v2.RandomResizedCrop,
    "random_horizontal_flip": v2.RandomHorizontalFlip,
    "random_rotation": v2.RandomRotation,
    "color_jitter": v2.ColorJitter,
}
assert set(_CLASSES) == set(TRANSFORMS), "every transform in the schema has a torchvision class"


def is_random(steps: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a list draws random numbers (augmentation), so it must run per sample and per epoch."""
    return any(step["op"].startswith("random_") or step["op"] == "color_jitter" for step in steps)


def pipeline(steps: Sequence[Mapping[str, Any]]) -> v2.Compose:
    """The transforms of one list, in order, on float image tensors in [0, 1]."""
    built = []
    for step in steps:
        options = {key: (tuple(value) if isinstance(value, list) else value) for key, value in step.items() if key != "op"}
        if step["op"] == "resize":
            options["antialias"] = True
        built.append(_CLASSES[step["op"]](**options))
    return v2.Compose(built)


def to_float_image() -> v2.Compose:
    """PIL images or uint8 tensors → float32 CHW tensors in [0, 1] (the seeds' `ToTensor()`)."""
    return v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
