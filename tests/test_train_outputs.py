"""Any inputs and outputs: a spec with two inputs and two outputs trains from a tensors file of named
inputs and targets, with a weighted loss per output and metrics per output; what does not fit is a
located diagnostic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nncompile.cli import main

SPEC = """\
nncompile: 1
name: two_heads
inputs: {signal: [8], extra: [4]}
outputs: [logits, box]
layers:
  - {id: joined, op: concat, from: [signal, extra], dim: 1}
  - {id: hidden, op: linear, out: 64, activation: relu}
  - {id: logits, op: linear, out: 3, from: hidden}
  - {id: box, op: linear, out: 2, from: hidden}
train:
  epochs: 12
  batch_size: 32
  data: {dataset: tensors, path: DATA}
  loss: {logits: cross_entropy, box: {type: mse, weight: 0.5}}
  optimizer: {type: adam, lr: 1.0e-2}
  checkpoint: {metric: val_logits_accuracy}
"""


def _data(count: int = 600, seed: int = 0) -> tuple[dict, dict]:
    generator = torch.Generator().manual_seed(seed)
    signal, extra = torch.randn(count, 8, generator=generator), torch.randn(count, 4, generator=generator)
    logits = (signal[:, :3] + extra[:, :3]).argmax(1)
    box = signal[:, :2] * 2 + extra[:, 2:4]
    return {"signal": signal, "extra": extra}, {"logits": logits, "box": box}


def _spec(tmp_path: Path, data: Path, text: str = SPEC) -> Path:
    spec = tmp_path / "two_heads.yaml"
    spec.write_text(text.replace("DATA", str(data)))
    return spec


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
@pytest.mark.parametrize("suffix", [".pt", ".npz"])
def test_two_inputs_and_two_outputs_train_with_a_loss_each(tmp_path: Path, suffix: str):
    inputs, targets = _data()
    data = tmp_path / f"data{suffix}"
    if suffix == ".pt":
        torch.save({"inputs": inputs, "targets": targets}, data)
    else:
        arrays = {f"inputs.{k}": v.numpy() for k, v in inputs.items()} | {f"targets.{k}": v.numpy() for k, v in targets.items()}
        np.savez(data, **arrays)
    out = tmp_path / "run"
    assert main(["train", str(_spec(tmp_path, data)), "--out", str(out)]) == 0
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    first, last = history[0], history[-1]
    assert {"val_logits_loss", "val_logits_accuracy", "val_box_loss", "val_loss"} <= set(last)
    assert "val_box_accuracy" not in last  # a regression output has no accuracy
    assert last["val_logits_accuracy"] > 0.8 > first["val_logits_accuracy"] - 0.2
    assert last["val_box_loss"] < first["val_box_loss"] / 4
    assert last["val_loss"] == pytest.approx(last["val_logits_loss"] + 0.5 * last["val_box_loss"], rel=1e-6)
    model = torch.jit.load(str(out / "model.ts"))
    logits, box = model(inputs["signal"][:5], inputs["extra"][:5])
    assert logits.shape == (5, 3) and box.shape == (5, 2)


@pytest.mark.parametrize(
    ("loss", "message"),
    [
        ("{logits: cross_entropy, boxes: mse}", "error[E0502]: the model has no output 'boxes'"),
        ("cross_entropy", "error[E0502]: one loss for 2 outputs: give a loss per output"),
        ("{logits: mse, box: mse}", "loss 'mse': the model outputs [3] per sample but the targets are []"),
    ],
)
def test_losses_that_do_not_fit_the_outputs_are_located(tmp_path: Path, capsys, loss: str, message: str):
    inputs, targets = _data(64)
    data = tmp_path / "data.pt"
    torch.save({"inputs": inputs, "targets": targets}, data)
    text = SPEC.replace("{logits: cross_entropy, box: {type: mse, weight: 0.5}}", loss).replace(
        "  checkpoint: {metric: val_logits_accuracy}\n", ""
    )
    assert main(["train", str(_spec(tmp_path, data, text)), "--out", str(tmp_path / "run")]) == 1
    assert message in capsys.readouterr().out


def test_inputs_must_be_the_models(tmp_path: Path, capsys):
    inputs, targets = _data(64)
    data = tmp_path / "data.pt"
    torch.save({"inputs": {"signal": inputs["signal"], "other": inputs["extra"]}, "targets": targets}, data)
    assert main(["train", str(_spec(tmp_path, data)), "--out", str(tmp_path / "run")]) == 1
    assert "the data's inputs are signal, other but the model's are signal, extra" in capsys.readouterr().out
