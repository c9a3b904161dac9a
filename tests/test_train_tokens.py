"""Transformers train: a nanoGPT-style spec from a file of token ids (`.npy`, `.pt`, `.bin`), its
perplexity falling, and the zoo's ViT on digits as patches; the classes-last loss and the per-token
tally against torch's own functions."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT
from nncompile.runtime.config import TrainError
from nncompile.runtime.loop import Tally
from nncompile.runtime.optim import loss_function
from nncompile.runtime.tokens import token_splits

from nncompile.cli import main

GPT = str(ROOT / "specs" / "zoo" / "gpt.yaml")
SMALL_GPT = ["--set", "block_size=32", "--set", "vocab_size=128", "--set", "n_layer=2", "--set", "n_head=2", "--set", "n_embd=32"]
TEXT = b"the quick brown fox jumps over the lazy dog. " * 300


def _tokens(folder: Path, suffix: str) -> Path:
    ids = np.frombuffer(TEXT, dtype=np.uint8)  # ASCII characters as token ids, all below 128
    path = folder / f"tokens{suffix}"
    if suffix == ".npy":
        np.save(path, ids.astype(np.int32))
    elif suffix == ".pt":
        torch.save(torch.from_numpy(ids.astype(np.int64)), path)
    else:
        ids.astype(np.uint16).tofile(path)
    return path


def _config(folder: Path, path: Path, epochs: int = 3) -> Path:
    config = folder / "train.yaml"
    config.write_text(
        f"epochs: {epochs}\nbatch_size: 16\ndata: {{dataset: tokens, path: '{path}'}}\noptimizer: {{type: adamw, lr: 3.0e-3}}\n"
    )
    return config


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".npy", ".pt", ".bin"])
def test_a_gpt_spec_learns_from_a_tokens_file(tmp_path: Path, suffix: str):
    config = _config(tmp_path, _tokens(tmp_path, suffix))
    out = tmp_path / "run"
    assert main(["train", GPT, "--config", str(config), *SMALL_GPT, "--out", str(out)]) == 0
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    perplexity = [record["val_perplexity"] for record in history]
    assert perplexity[-1] < perplexity[0] / 2 and perplexity[-1] < 3.0, perplexity
    assert all(math.isclose(r["val_perplexity"], math.exp(r["val_loss"]), rel_tol=1e-9) for r in history)
    assert (out / "model.ts").is_file() and (out / "best.pt").is_file()


def test_windows_are_shifted_by_one_and_the_split_holds_out_the_end(tmp_path: Path):
    path = _tokens(tmp_path, ".npy")
    train, val, vocab = token_splits({"path": str(path), "dtype": "uint16", "val_split": 0.1}, seed=0, block=8)
    ids = torch.from_numpy(np.load(path).astype(np.int64))
    assert vocab == int(ids.max()) + 1
    x, y = train[3]
    start = int(train.starts[3])
    assert torch.equal(x, ids[start : start + 8]) and torch.equal(y, ids[start + 1 : start + 9])
    boundary = len(ids) - int(len(ids) * 0.1)
    assert int(train.starts.max()) + 8 < boundary <= int(val.starts.min())
    assert len(train) == boundary // 8


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (np.zeros((4, 4), dtype=np.int64), "must hold a 1-D array of integer token ids"),
        (np.zeros(100, dtype=np.float32), "must hold a 1-D array of integer token ids"),
        (np.arange(10, dtype=np.int64), "each needs more than block_size"),
    ],
)
def test_a_bad_tokens_file_is_a_located_error(tmp_path: Path, content, message: str):
    path = tmp_path / "tokens.npy"
    np.save(path, content)
    with pytest.raises(TrainError, match=message) as error:
        token_splits({"path": str(path), "dtype": "uint16"}, seed=0, block=8)
    assert error.value.path == ("data", "path")


def test_the_classes_last_loss_is_torchs_cross_entropy_over_tokens():
    generator = torch.Generator().manual_seed(0)
    scores, labels = torch.randn(2, 5, 7, generator=generator), torch.randint(0, 7, (2, 5), generator=generator)
    labels[0, 0] = -100
    loss = loss_function({"loss": "cross_entropy"})(scores, labels)
    assert torch.allclose(loss, F.cross_entropy(scores.reshape(-1, 7), labels.reshape(-1), ignore_index=-100))
    images, pixels = torch.randn(2, 3, 4, 4, generator=generator), torch.randint(0, 3, (2, 4, 4), generator=generator)
    assert torch.allclose(loss_function({"loss": "cross_entropy"})(images, pixels), F.cross_entropy(images, pixels))


def test_the_tally_scores_tokens_and_skips_ignored_ones():
    scores = torch.tensor([[[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]]])  # predicts 0, 1, 0
    labels = torch.tensor([[0, 0, -100]])
    tally = Tally(torch.device("cpu"), classes=2, sequence=True)
    loss = F.cross_entropy(scores.reshape(-1, 2), labels.reshape(-1))
    tally.add(loss, scores, labels)
    result = tally.result("val")
    assert result["val_accuracy"] == 0.5  # one of the two scored tokens; the ignored one not counted
    assert math.isclose(result["val_perplexity"], math.exp(loss.item()), rel_tol=1e-6)


@pytest.mark.slow
def test_a_vit_spec_learns_digits_as_patches(tmp_path: Path):
    """The zoo's ViT, made small, on scikit-learn's 8x8 digits cut into 2x2 patches."""
    config = tmp_path / "train.yaml"
    config.write_text(
        "epochs: 10\nbatch_size: 64\ndata: {dataset: digits}\n"
        "optimizer: {type: adamw, lr: 2.0e-3, weight_decay: 0.05}\nschedule: {type: cosine, warmup_epochs: 1}\n"
    )
    small = {"channels": 1, "image_size": 8, "patch_size": 2, "num_layers": 2, "num_heads": 4, "hidden_dim": 64, "mlp_dim": 128}
    flags = [part for key, value in (small | {"num_classes": 10}).items() for part in ("--set", f"{key}={value}")]
    out = tmp_path / "run"
    vit = str(ROOT / "specs" / "zoo" / "vit_b_16.yaml")
    assert main(["train", vit, "--config", str(config), *flags, "--out", str(out)]) == 0
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    accuracy = [record["val_accuracy"] for record in history]
    assert accuracy[0] < 0.7 < 0.85 < max(accuracy), accuracy
