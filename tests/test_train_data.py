"""Training data sources, augmentation, transfer learning, and the located diagnostics of `train`."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch
from conftest import ROOT
from nncompile.runtime import train
from nncompile.runtime.checkpoint import load
from nncompile.runtime.config import checked
from nncompile.runtime.data import load as load_data
from test_train import SMALL, Probe, records, section
from torch.utils.data import DataLoader

from nncompile import compiler
from nncompile.cli import main

CONV = """\
nncompile: 1
name: conv
inputs: {image: [3, 16, 16]}
layers:
  - {id: conv, op: conv2d, out: 4, kernel: 3, padding: 1, activation: relu}
  - {op: adaptive_avgpool2d, size: 1}
  - {op: flatten}
  - {id: fc, op: linear, out: 3}
train:
  epochs: 1
  batch_size: 8
  optimizer: {type: sgd, lr: 0.01}
"""


def conv_model(write_spec) -> torch.nn.Module:
    """CONV's model (its train section needs data to validate; any will do for building)."""
    return compiler.build(write_spec(CONV + "  data: {dataset: digits}\n", "conv.yaml"))


def write_mnist(root, count: int = 40) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """MNIST's own idx files (the format torchvision reads), filled with random digits; returns each
    split's images ([N, 1, 28, 28] uint8) and labels."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    generator = np.random.default_rng(0)
    written = {}
    for split in ("train", "t10k"):
        images = generator.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = generator.integers(0, 10, size=count, dtype=np.uint8)
        (raw / f"{split}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, count, 28, 28) + images.tobytes())
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, count) + labels.tobytes())
        written[split] = torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels).long()
    return written


def test_mnist_recipe_reads_torchvision_files_and_augments(tmp_path, write_spec):
    written = write_mnist(tmp_path / "data")
    text = _mnist_spec(tmp_path)
    data = load_data(checked(section(text)), torch.device("cpu"))
    train, val = data.train.dataset, data.val  # augmented: read per sample; the test split, resident

    def normalize(images: torch.Tensor) -> torch.Tensor:
        return (images.float() / 255 - 0.1307) / 0.3081

    assert torch.equal(train.inputs, written["train"][0]) and torch.equal(train.targets, written["train"][1])
    assert torch.allclose(val.inputs, normalize(written["t10k"][0]), atol=1e-5) and torch.equal(val.targets, written["t10k"][1])
    torch.manual_seed(0)
    rotated = [not torch.allclose(train[index][0], normalize(train.inputs[index]), atol=1e-5) for index in range(len(train))]
    assert sum(rotated) > len(train) / 2, "the training images are rotated (by up to 10 degrees: a few barely move)"
    assert not torch.equal(train[0][0], train[0][0]), "and drawn again at every reading"
    assert main(["train", str(write_spec(text)), "--out", str(tmp_path / "run"), "--set", "train.epochs=1"]) == 0
    assert len(records(tmp_path / "run")) == 1


def _mnist_spec(tmp_path) -> str:
    """The shipped MNIST recipe, reading the files above, with the seeds' augmentation."""
    text = (ROOT / "specs" / "mnist_mlp.yaml").read_text()
    root = tmp_path / "data"
    return text.replace("root: data, download: true", f"root: {root}, download: false") + (
        "  transforms:\n    train: [{op: random_rotation, degrees: 10}, {op: normalize, mean: [0.1307], std: [0.3081]}]\n"
        "    val: [{op: normalize, mean: [0.1307], std: [0.3081]}]\n"
    )


@pytest.mark.parametrize("suffix", [".pt", ".npz"])
def test_tensor_files_are_read_and_split_as_seeded(tmp_path, write_spec, suffix):
    inputs, targets = torch.rand(50, 1, 8, 8), torch.randint(0, 10, (50,))
    path = tmp_path / f"data{suffix}"
    if suffix == ".pt":
        torch.save({"inputs": inputs, "targets": targets}, path)
    else:
        np.savez(path, inputs=inputs.numpy(), targets=targets.numpy())
    text = SMALL.replace("{dataset: digits}", f"{{dataset: tensors, path: '{path}', val_split: 0.2}}")
    row = {float(sample[0, 0, 0]): index for index, sample in enumerate(inputs)}  # random floats: each row's own

    def rows(seed: int) -> tuple[list[int], list[int]]:
        """The file's rows in the train and validation splits, checked to hold those rows' values."""
        data = load_data(checked(section(text) | {"seed": seed}), torch.device("cpu"))
        found = []
        for split in (data.train, data.val):
            indices = [row[float(sample[0, 0, 0])] for sample in split.inputs]
            assert torch.equal(split.inputs, inputs[indices]) and torch.equal(split.targets, targets[indices])
            found.append(indices)
        return found[0], found[1]

    train_rows, val_rows = rows(0)
    assert (len(train_rows), len(val_rows)) == (40, 10)
    assert sorted(train_rows + val_rows) == list(range(50)), "disjoint, and every row in one of them"
    assert rows(0) == (train_rows, val_rows) and rows(1)[1] != val_rows, "the seed picks the split"
    assert main(["train", str(write_spec(text)), "--out", str(tmp_path / "run")]) == 0
    assert len(records(tmp_path / "run")) == 2


def test_regression_on_tensors(tmp_path, write_spec):
    """A linear target is learnt almost exactly by one linear layer (mse falls 100-fold)."""
    inputs = torch.rand(256, 4)
    torch.save({"inputs": inputs, "targets": inputs @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])}, tmp_path / "data.pt")
    spec = write_spec(
        "nncompile: 1\ninputs: {x: [4]}\nlayers:\n  - {op: linear, out: 1}\n"
        f"train:\n  epochs: 40\n  batch_size: 16\n  data: {{dataset: tensors, path: '{tmp_path / 'data.pt'}'}}\n  loss: mse\n"
        "  optimizer: {type: sgd, lr: 0.1}\n"
    )
    assert main(["train", str(spec), "--out", str(tmp_path / "run")]) == 0
    history = records(tmp_path / "run")
    assert history[-1]["val_accuracy"] is None
    assert history[-1]["val_loss"] < history[0]["train_loss"] / 100


COLOURS = [(30 + 50 * index, 200 - 40 * label, 60 + 60 * label) for label in range(3) for index in range(4)]
"""The colour of each image of the folders below (no grey: a change of hue shows)."""


def _image_folders(root) -> None:
    """Three classes of 20×20 PNG files, four per class and split, each a plain colour of COLOURS."""
    from PIL import Image

    for split in ("train", "val"):
        for label, name in enumerate(("cat", "dog", "fox")):
            folder = root / split / name
            folder.mkdir(parents=True)
            for index in range(4):
                colour = np.array(COLOURS[4 * label + index], dtype=np.uint8)
                Image.fromarray(np.broadcast_to(colour, (20, 20, 3)).copy()).save(folder / f"{index}.png")


def _colours(batches: list[torch.Tensor]) -> list[tuple[int, ...]]:
    """The colour of each image of some batches of plain-coloured images, on the files' 0–255 scale."""
    images = torch.cat(batches)
    assert (images.amax((2, 3)) - images.amin((2, 3))).max() < 1e-6, "each image is still one plain colour"
    return [tuple(round(float(v) * 255, 2) for v in image[:, 0, 0]) for image in images]


def test_image_folder_with_augmentation_uses_a_dataloader(tmp_path, write_spec, monkeypatch):
    """Files are read through a DataLoader, augmented to the model's 16×16, and every sample is seen:
    validation reads the files' colours, training changes their hue."""
    import nncompile.runtime.loop

    loaders = []

    class CountingLoader(DataLoader):
        def __iter__(self):
            loaders.append(self)
            return super().__iter__()

    monkeypatch.setattr(nncompile.runtime.loop, "DataLoader", CountingLoader)
    _image_folders(tmp_path)
    config = section(CONV) | {
        "data": {"dataset": "image_folder", "root": str(tmp_path / "train"), "val_root": str(tmp_path / "val"), "workers": 0},
        "transforms": {
            "train": [{"op": "random_resized_crop", "size": 16}, {"op": "random_horizontal_flip"}, {"op": "color_jitter", "hue": 0.1}],
            "val": [{"op": "resize", "size": 18}, {"op": "center_crop", "size": 16}],
        },
    }
    probe = Probe(conv_model(write_spec))
    run = train(probe, config)
    assert [type(loader.dataset).__name__ for loader in loaders] == ["ImageFiles", "ImageFiles"]
    assert len(loaders[0].dataset) == len(loaders[1].dataset) == 12
    steps = probe.seen[1:]
    assert [seen["shape"] for seen in steps] == [(8, 3, 16, 16), (4, 3, 16, 16), (8, 3, 16, 16), (4, 3, 16, 16)]
    trained = _colours([seen["inputs"] for seen in steps if seen["training"]])
    validated = _colours([seen["inputs"] for seen in steps if not seen["training"]])
    written = [tuple(float(v) for v in colour) for colour in COLOURS]
    assert sorted(validated) == sorted(written)
    assert sum(colour not in written for colour in trained) > len(trained) / 2, "color_jitter moved the training hues"
    assert run.history[0]["val_accuracy"] is not None


def test_fake_data_and_channels_last(tmp_path, write_spec):
    """`channels_last: true` puts the convolution weights and every batch in channels-last layout."""
    config = section(CONV) | {
        "data": {"dataset": "fake", "size": 24, "image_size": [3, 16, 16], "num_classes": 3, "workers": 0},
        "channels_last": True,
    }
    probe = Probe(conv_model(write_spec))
    train(probe, config)
    assert probe.model.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not probe.model.conv.weight.is_contiguous()
    assert all(seen["channels_last"] for seen in probe.seen[1:]) and len(probe.seen) > 2
    plain = Probe(conv_model(write_spec))
    train(plain, config | {"channels_last": False})
    assert not any(seen["channels_last"] for seen in plain.seen)


def test_transfer_learning_new_head_freeze_and_groups(tmp_path, write_spec, capsys):
    source = write_spec(SMALL, "source.yaml")
    assert main(["train", str(source), "--out", str(tmp_path / "source")]) == 0
    trained = load(tmp_path / "source" / "best.pt")["model"]
    torch.save(trained, tmp_path / "plain_state_dict.pt")
    target = SMALL.replace("out: 10}", "out: 12}").replace("epochs: 2", "epochs: 1")
    init = f"  init: {{from: '{tmp_path / 'plain_state_dict.pt'}'}}\n"
    spec = write_spec(target + init, "strict.yaml")
    assert main(["train", str(spec), "--out", str(tmp_path / "strict")]) == 1
    message = capsys.readouterr().out
    assert "strict.yaml:15:" in message and "error[E0503]" in message and "fc2.weight [10, 32] → [12, 32]" in message
    tuned = target + init.replace("}\n", ", exclude: [fc2]}\n") + "  freeze: [fc1]\n"
    tuned = tuned.replace("optimizer: {type: adamw, lr: 3.0e-3}", "optimizer: {type: sgd, lr: 0.1, groups: [{params: [fc2], lr: 0.01}]}")
    assert main(["train", str(write_spec(tuned, "tuned.yaml")), "--out", str(tmp_path / "tuned")]) == 0
    result = load(tmp_path / "tuned" / "last.pt")["model"]
    assert torch.equal(result["fc1.weight"], trained["fc1.weight"]), "frozen layer kept its weights"
    assert result["fc2.weight"].shape == (12, 32)


@pytest.mark.parametrize(
    ("change", "where", "code"),
    [
        ("{dataset: digits}", "{dataset: mnist, root: /nonexistent/data}", "error[E0501]: no MNIST data under '/nonexistent/data'"),
        ("{dataset: digits}", "{dataset: digits, val_split: test}", "error[E0501]: dataset 'digits' has no test split"),
        ("params: {hidden: 32}", "params: {hidden: 32}\n# shift", "error[E0504]: pattern 'conv*' matches no parameter"),
        (
            "inputs: {image: [1, 8, 8]}",
            "inputs: {image: [64]}",
            "error[E0502]: samples are [1, 8, 8] but the model's input 'image' is [64]",
        ),
        ("out: 10}", "out: 5}", "error[E0502]: the model scores 5 classes, but the data has 10"),
    ],
)
def test_train_settings_that_cannot_work_get_located_diagnostics(tmp_path, write_spec, capsys, change, where, code):
    text = SMALL.replace(change, where) + ("  freeze: ['conv*']\n" if "conv*" in code else "")
    spec = write_spec(text)
    assert main(["train", str(spec), "--out", str(tmp_path / "run")]) == 1
    out = capsys.readouterr().out
    assert code in out
    assert out.startswith(f"{spec}:"), out


def test_a_spec_without_train_section(tmp_path, write_spec, capsys):
    spec = write_spec("nncompile: 1\ninputs: {x: [4]}\nlayers:\n  - {op: linear, out: 1}\n")
    assert main(["train", str(spec), "--out", str(tmp_path)]) == 1
    assert "error[E0506]: the spec has no train section" in capsys.readouterr().out


def test_resume_from_a_file_that_is_not_a_checkpoint(tmp_path, write_spec, capsys):
    bogus = tmp_path / "bogus.pt"
    bogus.write_bytes(gzip.compress(b"not a checkpoint"))
    assert main(["train", str(write_spec(SMALL)), "--out", str(tmp_path / "run"), "--resume", str(bogus)]) == 2
    assert "--resume" in capsys.readouterr().err


def test_shipped_convnet_recipe_trains_with_its_augmentation(tmp_path, write_spec):
    text = (ROOT / "specs" / "convnet.yaml").read_text()
    fake = "{dataset: fake, size: 64, image_size: [3, 32, 32], num_classes: 10, workers: 0}"
    spec = write_spec(text.replace("{dataset: cifar10, root: data, download: true}", fake))
    assert main(["train", str(spec), "--out", str(tmp_path / "run"), "--set", "train.epochs=1"]) == 0
