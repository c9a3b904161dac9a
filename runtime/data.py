"""Data: the `data:` and `transforms:` settings as train and validation splits.

Tensor datasets (digits, MNIST, CIFAR, `.pt`/`.npz` files) are read into one float tensor. Without
augmentation they stay resident on the device and batches are slices of it (no DataLoader); with
augmentation, and for image folders, a DataLoader applies the transforms in workers (in two stages:
see `splits`), and the validation tensors stay on the CPU, pinned for a GPU run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from nncompile.compiler.files import no_such
from nncompile.compiler.train_schema import MAX_SAMPLES, TORCHVISION_DATASETS
from nncompile.compiler.weights import CheckpointError, read, tensor_problem
from torch.utils.data import Dataset, Subset

from . import batch
from .config import TrainError, label_losses
from .splits import Split, host, staged, transformed
from .transforms import is_random, pipeline, stages

RESIDENT_LIMIT = 4 * 2**30
"""Bytes a tensor dataset may take and still be kept resident when `resident: auto`."""
IMAGE_FOLDER_LIMIT = 5_000_000
"""Entries (files and folders) an image folder's scan reads before it refuses the folder."""
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


@dataclass
class Data:
    train: Split
    val: Split
    num_classes: int | None
    targets_are_labels: bool
    sequence: bool = False
    """Samples are token windows and targets the next tokens (`tokens`): perplexity is reported."""
    outputs: dict[str, tuple[int | None, bool]] | None = None
    """With targets by output name: each output's class count (None: not labels) and whether its
    targets are labels. None with a single target."""


@dataclass
class _Source:
    """A dataset as read: tensors (train, and test if it has a test split), or a Dataset factory."""

    train: tuple[torch.Tensor, torch.Tensor] | None = None
    test: tuple[torch.Tensor, torch.Tensor] | None = None
    make: Callable[[Callable, bool], Dataset] | None = None
    """(transform, from_training_files) → Dataset; False reads the test split."""
    has_test: bool = False
    num_classes: int | None = None
    uint8_images: bool = False
    """Inputs are uint8 images, made float32 in [0, 1] by the first step that needs floats."""


def load(config: Mapping[str, Any], device: torch.device, block_size: int | None = None) -> Data:
    """The train and validation splits that `config` describes, on `device` when resident.
    `block_size` is the window length of a `tokens` dataset that does not set its own."""
    data, steps = config["data"], config.get("transforms", {})
    if data["dataset"] == "tokens":
        return _tokens(data, config, block_size)
    train_steps, val_steps = steps.get("train", []), steps.get("val", [])
    source = _read(data)
    split = data.get("val_split", "test" if source.has_test else 0.2)
    if split == "test" and not source.has_test:
        raise TrainError(
            ("data", "val_split"), f"dataset '{data['dataset']}' has no test split", "hold out a fraction, e.g. val_split: 0.2"
        )
    if source.train is None:
        train, val = _datasets(source, split, config["seed"], train_steps, val_steps)
        if data["resident"] is True:
            raise TrainError(("data", "resident"), f"dataset '{data['dataset']}' is read image by image and cannot be resident")
        return Data(train, val, source.num_classes, targets_are_labels=True)
    (x, y), held_out = source.train, source.test
    _check_labels(y, config)
    if split != "test":
        train_index, val_index = _split_indices(batch.length(x), split, config["seed"])
        held_out, (x, y) = (batch.take(x, val_index), batch.take(y, val_index)), (batch.take(x, train_index), batch.take(y, train_index))
    if isinstance(x, dict) and (train_steps or val_steps):
        raise TrainError(("transforms",), "transforms apply to a single image input, not to named inputs")
    images = source.uint8_images
    resident = _resident(data["resident"], x, train_steps, images)
    if resident:
        train = Split(batch.to(_apply(train_steps, x, images), device), batch.to(y, device))
    else:
        train = transformed(x, y, train_steps, images)
    held = (_apply(val_steps, held_out[0], images), held_out[1])
    val = Split(*(batch.to(value, device) if resident else host(value, device) for value in held))
    if isinstance(y, dict):
        outputs = {name: (_classes(t), not t.is_floating_point()) for name, t in y.items()}
        return Data(train, val, None, False, outputs=outputs)
    labels = not y.is_floating_point()
    return Data(train, val, source.num_classes if labels else None, labels)


def _classes(targets: torch.Tensor) -> int | None:
    """The class count of integer labels (one per sample or per position), None for other targets."""
    return int(targets.max()) + 1 if not targets.is_floating_point() and targets.numel() else None


def _tokens(data: Mapping[str, Any], config: Mapping[str, Any], block_size: int | None) -> Data:
    from .tokens import token_splits

    block = data.get("block_size", block_size)
    if block is None:
        raise TrainError(("data", "block_size"), "the window length is not known", "set block_size, or train a spec whose input is [T]")
    if data["resident"] is True:
        raise TrainError(("data", "resident"), "a tokens file is read window by window (memory-mapped) and cannot be resident")
    train, val, vocab = token_splits(data, config["seed"], block)
    return Data(Split(dataset=train), Split(dataset=val), vocab, targets_are_labels=True, sequence=True)


def _resident(setting: bool | str, inputs: batch.Value, train_steps: list, images: bool) -> bool:
    if is_random(train_steps):
        if setting is True:
            raise TrainError(
                ("data", "resident"), "resident data cannot be augmented per sample", "drop 'resident: true' or the random transforms"
            )
        return False
    tensors = list(inputs.values()) if isinstance(inputs, dict) else [inputs]
    size = sum(t.numel() * (4 if images else t.element_size()) for t in tensors)  # resident images are float32
    return setting is True or (setting == "auto" and size <= RESIDENT_LIMIT)


def _apply(steps: list, inputs: batch.Value, images: bool = False) -> batch.Value:
    """Deterministic transforms, once, over a whole tensor (in chunks to bound memory); uint8 images
    come out float32 in [0, 1]."""
    if not steps and not images:
        return inputs
    transform = pipeline(steps, from_uint8=images)
    return torch.cat([transform(chunk) for chunk in inputs.split(4096)])


def _split_indices(size: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    order = torch.randperm(size, generator=torch.Generator().manual_seed(seed))
    held_out = min(size - 1, max(1, round(size * fraction)))
    return order[held_out:], order[:held_out]


def _datasets(source: _Source, split: float | str, seed: int, train_steps: list, val_steps: list) -> tuple[Split, Split]:
    """Images read one by one (PIL images: made uint8 tensors, then the steps); a fraction `split` of
    the training files held out, unless `split` is 'test'."""
    if split == "test":
        return _pictures(source, train_steps, True, None), _pictures(source, val_steps, False, None)
    train_index, val_index = _split_indices(len(source.make(None, True)), split, seed)
    return _pictures(source, train_steps, True, train_index.tolist()), _pictures(source, val_steps, True, val_index.tolist())


def _pictures(source: _Source, steps: list, training_files: bool, indices: list[int] | None) -> Split:
    def make(transform: Callable) -> Dataset:
        dataset = source.make(transform, training_files)
        return dataset if indices is None else Subset(dataset, indices)

    return staged(make, stages(steps, pil=True))


def _read(data: Mapping[str, Any]) -> _Source:
    name = data["dataset"]
    if name == "digits":
        return _digits()
    if name == "tensors":
        return _tensor_file(Path(data["path"]))
    if name in TORCHVISION_DATASETS:
        return _torchvision(name, Path(data["root"]), data["download"])
    if name == "fake":
        return _fake(data)
    return _image_folder(data)


def _digits() -> _Source:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise TrainError(("data", "dataset"), "dataset 'digits' needs scikit-learn", "pip install 'nncompile[digits]'") from None
    digits = load_digits()
    images = torch.from_numpy(digits.images).float().div_(16).unsqueeze(1)
    return _Source(train=(images, torch.from_numpy(digits.target).long()), num_classes=10)


def _tensor_file(path: Path) -> _Source:
    """`inputs` and `targets`, each a tensor or tensors by name (a model's inputs, its outputs'
    targets): a .pt file of torch.save({'inputs': …, 'targets': …}), or an .npz whose arrays are
    `inputs`/`targets` or `inputs.NAME`/`targets.NAME`. Every tensor must be dense, of floats or
    integers, with one row per sample."""
    where = ("data", "path")
    if not path.is_file():
        raise TrainError(where, no_such(path))
    hint = "a .pt file saved with torch.save({'inputs': x, 'targets': y}) or an .npz"
    try:
        found = _npz(path) if path.suffix == ".npz" else read(path, "training data", real=True)
    except CheckpointError as error:
        raise TrainError(where, str(error), hint) from None
    if not isinstance(found, dict) or not all(_tensors(found.get(k)) for k in ("inputs", "targets")):
        keys = ", ".join(map(str, found)) if isinstance(found, dict) else type(found).__name__
        raise TrainError(where, f"{path} must hold 'inputs' and 'targets', each a tensor or tensors by name (found: {keys})")
    inputs, targets = found["inputs"], found["targets"]
    tensors = [t for value in (inputs, targets) for t in (value.values() if isinstance(value, dict) else [value])]
    lengths = sorted({len(t) if t.dim() else 0 for t in tensors})
    if len(lengths) != 1 or lengths[0] < 2:
        raise TrainError(where, f"{path}: every tensor needs one row per sample, and two or more samples (found {lengths})")
    if lengths[0] > MAX_SAMPLES:
        raise TrainError(where, f"{path} holds {lengths[0]:,} samples: at most {MAX_SAMPLES:,} are read")
    inputs = _floats(inputs)
    if isinstance(targets, dict):
        return _Source(train=(inputs, {name: _target(t) for name, t in targets.items()}))
    labels = not targets.is_floating_point()
    classes = int(targets.max()) + 1 if labels and targets.dim() == 1 else None
    return _Source(train=(inputs, _target(targets)), num_classes=classes)


def _npz(path: Path) -> dict[str, Any]:
    """An .npz's arrays as tensors, nested by name (`inputs.a` → found['inputs']['a']), each checked
    as a .pt file's are."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as arrays:
            found = {key: torch.from_numpy(arrays[key]) for key in arrays.files}
    except Exception as error:
        raise CheckpointError(f"cannot read {path}: {str(error).strip()[:200] or type(error).__name__}") from None
    for key, tensor in found.items():
        problem = tensor_problem(tensor, real=True)
        if problem:
            raise CheckpointError(f"cannot read {path} as training data: {key} is {problem}")
    return _nested(found)


def _tensors(value: Any) -> bool:
    if isinstance(value, dict):
        return bool(value) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())
    return isinstance(value, torch.Tensor)


def _nested(arrays: dict[str, torch.Tensor]) -> dict[str, Any]:
    """`{'inputs.a': x, 'inputs.b': y, 'targets': t}` → `{'inputs': {'a': x, 'b': y}, 'targets': t}`."""
    found: dict[str, Any] = {}
    for key, value in arrays.items():
        head, _, name = key.partition(".")
        if name:
            found.setdefault(head, {})[name] = value
        else:
            found[head] = value
    return found


def _check_labels(targets: batch.Value, config: Mapping[str, Any]) -> None:
    """Class labels (targets of a classification loss) are class numbers from 0, or the loss's
    `ignore_index`: a negative one would fail inside the loss."""
    for name, ignore in label_losses(config).items():
        labels = targets.get(name) if isinstance(targets, dict) else targets if name is None else None
        if not isinstance(labels, torch.Tensor) or labels.is_floating_point() or not labels.numel():
            continue
        wrong = labels[(labels < 0) & (labels != ignore)]
        if wrong.numel():
            what = f"the labels of '{name}'" if name else "the labels"
            hint = f"labels are class numbers 0, 1, …; set the loss's ignore_index for a label not scored (now {ignore})"
            raise TrainError(("data", "path"), f"{what} include {int(wrong[0])}, a negative class", hint)


def _floats(value: batch.Value) -> batch.Value:
    """Float inputs as float32; integer inputs (token ids, indices) kept."""
    if isinstance(value, dict):
        return {name: _floats(tensor) for name, tensor in value.items()}
    return value.float() if value.is_floating_point() else value


def _target(targets: torch.Tensor) -> torch.Tensor:
    return targets.float() if targets.is_floating_point() else targets.long()


_TORCHVISION_CLASSES = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "cifar10": "CIFAR10", "cifar100": "CIFAR100"}


def _torchvision(name: str, root: Path, download: bool) -> _Source:
    import torchvision

    cls = getattr(torchvision.datasets, _TORCHVISION_CLASSES[name])
    try:
        train, test = cls(root, train=True, download=download), cls(root, train=False, download=download)
    except RuntimeError as error:
        hint = "set download: true to fetch it (needs internet)" if not download else None
        raise TrainError(("data", "root"), f"no {cls.__name__} data under '{root}' ({error})", hint) from None
    except OSError as error:
        raise TrainError(("data", "download"), f"cannot download {cls.__name__} into '{root}': {error}") from None
    return _Source(train=_images(train), test=_images(test), has_test=True, num_classes=len(train.classes), uint8_images=True)


def _images(dataset: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """A torchvision dataset's uint8 images (NHW or NHWC) as uint8 NCHW, with its labels (made float
    where the transforms need it: see `transforms.pipeline`)."""
    images = torch.as_tensor(dataset.data)
    images = images.unsqueeze(1) if images.dim() == 3 else images.permute(0, 3, 1, 2)
    return images.contiguous(), torch.as_tensor(dataset.targets, dtype=torch.long)


def _fake(data: Mapping[str, Any]) -> _Source:
    import torchvision

    def make(transform: Callable, train: bool) -> Dataset:
        return torchvision.datasets.FakeData(data["size"], tuple(data["image_size"]), data["num_classes"], transform=transform)

    return _Source(make=make, num_classes=data["num_classes"])


def _image_folder(data: Mapping[str, Any]) -> _Source:
    """One subfolder of images per class (torchvision's ImageFolder layout), scanned once and within
    bounds: the classes are the root's folders; their files and subfolders are read, but no link
    below a class folder is followed, and more than IMAGE_FOLDER_LIMIT entries is refused."""
    found = {}
    for train, key in ((True, "root"), (False, "val_root")):
        root = Path(data.get(key, data["root"]))
        if not root.is_dir():
            raise TrainError(("data", key), no_such(root, "directory"), "an image folder holds one subdirectory of images per class")
        found[train] = _scan(root, key)
    classes = found[True][1]
    if "val_root" in data and found[False][1] != classes:
        raise TrainError(("data", "val_root"), f"its classes ({_shown(found[False][1])}) are not root's ({_shown(classes)})")

    def make(transform: Callable, train: bool) -> Dataset:
        return ImageFiles(found[train][0], transform)

    return _Source(make=make, has_test="val_root" in data, num_classes=len(classes))


def _scan(root: Path, key: str) -> tuple[list[tuple[str, int]], list[str]]:
    """The (image path, class index) pairs under `root`, and the class names (its subfolders, sorted)."""
    where, entries = ("data", key), 0
    hint = "an image folder holds one subdirectory of images per class"
    try:
        classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())
        samples = []
        for index, name in enumerate(classes):
            for folder, subfolders, files in os.walk(root / name, onerror=_raise):
                entries += len(subfolders) + len(files)
                if entries > IMAGE_FOLDER_LIMIT:
                    raise TrainError(where, f"more than {IMAGE_FOLDER_LIMIT:,} files and folders under {root}", hint)
                subfolders.sort()
                samples += [(os.path.join(folder, file), index) for file in sorted(files) if file.lower().endswith(IMAGE_SUFFIXES)]
    except OSError as error:
        raise TrainError(where, f"cannot read {root}: {error}", hint) from None
    if not samples:
        raise TrainError(where, f"no images under {root} (files ending {', '.join(IMAGE_SUFFIXES)} in class folders)", hint)
    return samples, classes


def _raise(error: OSError) -> None:
    raise error


def _shown(names: list[str], count: int = 5) -> str:
    return ", ".join(names[:count]) + (f" and {len(names) - count} more" if len(names) > count else "")


class ImageFiles(Dataset):
    """Image files with their class numbers, read as RGB PIL images (as torchvision's ImageFolder)."""

    def __init__(self, samples: list[tuple[str, int]], transform: Callable | None):
        self.samples, self.transform = samples, transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        from PIL import Image

        path, label = self.samples[index]
        with Image.open(path) as image:
            image = image.convert("RGB")
        return (self.transform(image) if self.transform else image), label


def default_workers() -> int:
    return max(1, min(8, (os.cpu_count() or 2) - 1))
