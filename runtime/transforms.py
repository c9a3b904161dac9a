"""The `transforms:` lists as torchvision.transforms.v2 pipelines, and where each step runs: per sample
(in the DataLoader's workers) or per batch (on the device, after the host-to-device copy)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from nncompile.compiler.train_schema import TRANSFORMS
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional

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
PER_BATCH = (v2.ToDtype, v2.Normalize)
"""Steps that compute each value of an image on its own, the same in every sample: run on a batch of
`[C, H, W]` images, they give the numbers they give one image at a time."""


def pipeline(steps: Sequence[Mapping[str, Any]], from_uint8: bool = False) -> v2.Compose:
    """The transforms of one list, in order, on float image tensors in [0, 1]. `from_uint8`: the images
    arrive as uint8 and are made float only before the first step that needs it (as torchvision's
    reference scripts do: crops move a quarter of the bytes), or at the end."""
    return v2.Compose(_built(steps, from_uint8))


def _built(steps: Sequence[Mapping[str, Any]], from_uint8: bool) -> list[v2.Transform]:
    built: list[v2.Transform] = []
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
    return built


class BatchSteps:
    """Per-batch steps (`PER_BATCH`) on the device. v2.Normalize would copy its mean and std to the
    device on every call, a blocking copy that waits for the GPU: here they are copied once per device
    and dtype, and given to v2's own kernel (the same numbers)."""

    def __init__(self, steps: Sequence[v2.Transform]):
        self.steps = list(steps)
        self._constants: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        for index, step in enumerate(self.steps):
            if isinstance(step, v2.Normalize):
                mean, std = self._on(index, step, images)
                images = functional.normalize(images, mean, std)
            else:
                images = step(images)
        return images

    def _on(self, index: int, step: v2.Normalize, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key = (index, images.device, images.dtype)
        if key not in self._constants:
            self._constants[key] = tuple(torch.tensor(values, dtype=images.dtype).to(images.device) for values in (step.mean, step.std))
        return self._constants[key]


@dataclass(frozen=True)
class Stages:
    """One list cut in two: `sample`, per sample, up to the last step that must see one image (random
    steps, steps that change sizes); `batch`, the steps after it that compute each value on its own
    (the conversion to float, normalization), per batch on the device after the copy, or None. Images
    that arrive as uint8 then cross the copy as uint8: a quarter of the bytes of float32."""

    sample: v2.Compose
    batch: BatchSteps | None

    def whole(self) -> v2.Compose:
        """Both, per sample: the pipeline's own numbers, for whoever reads samples one at a time."""
        return v2.Compose([self.sample, *self.batch.steps]) if self.batch is not None else self.sample


def stages(steps: Sequence[Mapping[str, Any]], from_uint8: bool = False, pil: bool = False) -> Stages:
    """`pipeline(steps, from_uint8)` cut into its per-sample and per-batch parts; `pil`: samples are PIL
    images (an image folder, fake data), made uint8 tensors first. For `[C, H, W]` images only: a
    batch of other samples is no batch of images."""
    built = _built(steps, from_uint8 or pil)
    cut = len(built)
    while cut and isinstance(built[cut - 1], PER_BATCH):
        cut -= 1
    first = [v2.ToImage()] if pil else []
    sample = first + built[:cut] or [v2.Identity()]
    return Stages(v2.Compose(sample), BatchSteps(built[cut:]) if cut < len(built) else None)
