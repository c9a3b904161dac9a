"""The `transforms:` lists as torchvision.transforms.v2 pipelines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from nncompile.compiler.train_schema import TRANSFORMS
from torchvision.transforms import v2

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


UINT8_SAFE = frozenset({"resize", "center_crop", "random_crop", "random_resized_crop", "random_horizontal_flip", "random_rotation"})
"""Steps that work on uint8 images as they do on floats: crops, flips, resizes and rotations."""


def pipeline(steps: Sequence[Mapping[str, Any]], from_uint8: bool = False) -> v2.Compose:
    """The transforms of one list, in order, on float image tensors in [0, 1]. `from_uint8`: the images
    arrive as uint8 and are made float only before the first step that needs it (as torchvision's
    reference scripts do: crops move a quarter of the bytes), or at the end."""
    built = []
    floating = not from_uint8
    for step in steps:
        if not floating and step["op"] not in UINT8_SAFE:
            built.append(v2.ToDtype(torch.float32, scale=True))
            floating = True
        options = {key: (tuple(value) if isinstance(value, list) else value) for key, value in step.items() if key != "op"}
        if step["op"] == "resize":
            options["antialias"] = True
        built.append(_CLASSES[step["op"]](**options))
    if not floating:
        built.append(v2.ToDtype(torch.float32, scale=True))
    return v2.Compose(built)


def image_pipeline(steps: Sequence[Mapping[str, Any]]) -> v2.Compose:
    """PIL images (an image folder) → the steps, run on uint8 until one needs floats → float32 CHW in
    [0, 1] (the seeds' `ToTensor()` then the steps, with the bytes kept small as long as they can be)."""
    return v2.Compose([v2.ToImage(), pipeline(steps, from_uint8=True)])
