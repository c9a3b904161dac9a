"""The Lightning adapter: a spec's model and train section trained in a plain `lightning.Trainer`, its
checkpoints reloaded the Lightning way (in a clean process, after the spec file is gone), and its
validation metrics the loop's, across processes too."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT

lightning = pytest.importorskip("lightning")

from nncompile.compiler import SpecError  # noqa: E402
from nncompile.runtime.lightning import SpecModule, from_spec  # noqa: E402 - only where Lightning is installed

DIGITS = ROOT / "specs" / "digits_mlp.yaml"
QUIET = {"accelerator": "cpu", "logger": False, "enable_progress_bar": False, "enable_model_summary": False}

RELOAD = """
import sys, torch
from nncompile.runtime.lightning import SpecModule
module = SpecModule.load_from_checkpoint(sys.argv[1]).eval()
with torch.no_grad():
    output = module(torch.load(sys.argv[2], weights_only=True))
torch.save({"state": module.state_dict(), "output": output, "hparams": dict(module.hparams)}, sys.argv[3])
"""


@pytest.mark.slow
def test_a_spec_trains_one_epoch_in_a_lightning_trainer():
    module, data = from_spec(DIGITS)
    trainer = lightning.Trainer(max_epochs=1, enable_checkpointing=False, **QUIET)
    trainer.validate(module, data, verbose=False)
    before = float(trainer.callback_metrics["val_accuracy"])
    trainer.fit(module, data)
    metrics = {key: float(value) for key, value in trainer.callback_metrics.items()}
    assert metrics["val_accuracy"] > 0.8 > before + 0.3, metrics
    assert metrics["val_loss"] < 1.0 and "train_loss" in metrics
    assert module.model.fc1.weight.requires_grad  # the spec's own module, trained in place


@pytest.mark.slow
def test_a_checkpoint_reloads_in_a_clean_process_after_its_spec_and_init_weights_are_gone(tmp_path):
    folder, pretrained = tmp_path / "specs", tmp_path / "pretrained.pt"
    folder.mkdir()
    spec = folder / "mlp.yaml"
    text = DIGITS.read_text().replace("  schedule:", f"  init: {{from: '{pretrained}'}}\n  schedule:")
    spec.write_text(text)
    shapes = SpecModule(DIGITS.read_text(), {"hidden": 48}).model.state_dict()
    generator = torch.Generator().manual_seed(7)
    start = {key: torch.randn(value.shape, generator=generator) * 0.1 for key, value in shapes.items()}
    torch.save(start, pretrained)
    module, data = from_spec(spec, hidden=48)
    assert all(torch.equal(module.model.state_dict()[key], value) for key, value in start.items())  # init was loaded
    trainer = lightning.Trainer(max_epochs=1, limit_train_batches=10, limit_val_batches=2, default_root_dir=tmp_path / "runs", **QUIET)
    trainer.fit(module, data)
    trained = {key: value.detach().clone() for key, value in module.state_dict().items()}
    assert not torch.equal(trained["model.fc1.weight"], start["fc1.weight"])
    shutil.rmtree(folder)  # the spec, moved or deleted after training
    pretrained.unlink()  # and the weights it started from

    inputs, result = tmp_path / "inputs.pt", tmp_path / "result.pt"
    torch.save(torch.randn(6, 1, 8, 8, generator=generator), inputs)
    ckpt = trainer.checkpoint_callback.best_model_path
    command = [sys.executable, "-c", RELOAD, ckpt, str(inputs), str(result)]
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]

    reloaded = torch.load(result, weights_only=True)
    assert reloaded["state"].keys() == trained.keys()
    assert all(torch.equal(reloaded["state"][key], value) for key, value in trained.items())
    with torch.no_grad():
        expected = module.eval()(torch.load(inputs, weights_only=True))
    torch.testing.assert_close(reloaded["output"], expected, rtol=1e-6, atol=1e-7)
    recorded = {"spec": text, "params": {"hidden": 48}, "source": str(spec)}
    assert reloaded["hparams"] == recorded
    assert torch.load(ckpt, weights_only=True)["hyper_parameters"] == recorded


def test_a_recorded_spec_with_errors_is_refused_naming_its_file():
    text = DIGITS.read_text().replace("out: $hidden", "out: $hiden")
    with pytest.raises(SpecError) as refused:
        SpecModule(text, source="models/mlp.yaml")
    line = next(number for number, row in enumerate(text.splitlines(), 1) if "$hiden" in row)
    assert str(refused.value).startswith(f"models/mlp.yaml:{line}:"), str(refused.value)
    with pytest.raises(ValueError, match=r"models/mlp\.yaml has no train section"):
        SpecModule(DIGITS.read_text().split("train:")[0], source="models/mlp.yaml")


def test_validation_logs_the_loops_metrics_with_sync_dist(monkeypatch):
    logged = {}
    original = SpecModule.log

    def log(self, name, value, **options):
        logged[name] = options
        original(self, name, value, **options)

    monkeypatch.setattr(SpecModule, "log", log)
    module, data = from_spec(DIGITS, hidden=32)
    (metrics,) = lightning.Trainer(enable_checkpointing=False, **QUIET).validate(module, data, verbose=False)
    val = data.data.val
    with torch.no_grad():
        logits = module.model.eval()(val.inputs)  # no dropout, as in validation
    top5 = (logits.topk(5, dim=-1).indices == val.targets[:, None]).any(-1)
    assert metrics["val_loss"] == pytest.approx(F.cross_entropy(logits, val.targets).item(), rel=1e-5)
    assert metrics["val_accuracy"] == pytest.approx((logits.argmax(-1) == val.targets).float().mean().item())
    assert metrics["val_top5"] == pytest.approx(top5.float().mean().item())  # 10 classes: as `nncompile train` reports
    assert set(logged) == {"val_loss", "val_accuracy", "val_top5"}
    assert all(options["sync_dist"] for options in logged.values())


def test_a_loss_per_output_logs_each_outputs_metrics(tmp_path):
    from test_train_outputs import SPEC, _data

    inputs, targets = _data(200)
    torch.save({"inputs": inputs, "targets": targets}, tmp_path / "data.pt")
    (tmp_path / "two_heads.yaml").write_text(SPEC.replace("DATA", str(tmp_path / "data.pt")))
    module, data = from_spec(tmp_path / "two_heads.yaml")
    (metrics,) = lightning.Trainer(enable_checkpointing=False, **QUIET).validate(module, data, verbose=False)
    val = data.data.val
    with torch.no_grad():
        logits, box = module.model.eval()(*(val.inputs[name] for name in module.order))
    labels = val.targets["logits"]
    expected = {
        "val_logits_loss": F.cross_entropy(logits, labels).item(),
        "val_logits_accuracy": (logits.argmax(-1) == labels).float().mean().item(),
        "val_box_loss": F.mse_loss(box, val.targets["box"]).item(),
    }
    expected["val_loss"] = expected["val_logits_loss"] + 0.5 * expected["val_box_loss"]
    assert metrics == pytest.approx(expected, rel=1e-5)  # the names `nncompile train` writes, no val_box_accuracy


@pytest.mark.parametrize("cuda", [True, False])
def test_data_loaders_pin_memory_where_there_is_cuda(monkeypatch, cuda):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    _, data = from_spec(DIGITS)
    assert data.train_dataloader().pin_memory is cuda
    assert data.val_dataloader().pin_memory is cuda


# Validation in two processes (Lightning's `ddp` launcher runs this file again for the second), with
# labels such that the mean over labels is not the mean of the processes' means: Lightning's sampler
# gives process 0 the even positions and process 1 the odd ones; process 0 scores one label (right),
# process 1 ten (five right), so val_accuracy must be 6/11, not 0.75.
TWO_PROCESSES = """
import json, sys, lightning, torch
from nncompile.runtime.lightning import from_spec

if __name__ == "__main__":
    module, data = from_spec(sys.argv[1], hidden=16)
    val = data.loaded().val
    with torch.no_grad():
        predicted = module.model.eval()(val.inputs).argmax(-1)
    labels = torch.full_like(predicted, -1)
    labels[0] = predicted[0]
    labels[1::2] = torch.where(torch.arange(10) % 2 == 0, predicted[1::2], (predicted[1::2] + 1) % 10)
    val.targets = labels
    quiet = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False, "enable_checkpointing": False}
    trainer = lightning.Trainer(accelerator="cpu", devices=2, strategy="ddp", **quiet)
    trainer.validate(module, data, verbose=False)
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(module.model.eval()(val.inputs), labels, ignore_index=-1)
    metrics = {key: float(value) for key, value in trainer.callback_metrics.items()}
    with open(f"{sys.argv[2]}.{trainer.global_rank}", "w") as file:
        json.dump({"metrics": metrics, "loss": loss.item(), "scored": int((labels != -1).sum())}, file)
    torch.distributed.destroy_process_group()
"""


@pytest.mark.slow
def test_two_processes_log_the_accuracy_over_every_scored_label(tmp_path):
    path, script, out = tmp_path / "data.pt", tmp_path / "validate.py", tmp_path / "metrics.json"
    torch.save({"inputs": torch.randn(40, 1, 8, 8), "targets": torch.randint(0, 10, (40,))}, path)
    spec = tmp_path / "mlp.yaml"
    text = DIGITS.read_text().replace("{dataset: digits, val_split: 0.2}", f"{{dataset: tensors, path: '{path}', val_split: 0.5}}")
    spec.write_text(text.replace("optimizer:", "loss: {type: cross_entropy, ignore_index: -1}\n  optimizer:"))
    script.write_text(TWO_PROCESSES)
    run = subprocess.run([sys.executable, str(script), str(spec), str(out)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = [json.loads(Path(f"{out}.{rank}").read_text()) for rank in (0, 1)]
    assert ranks[0]["metrics"] == ranks[1]["metrics"]  # every process logs the same numbers
    result = ranks[0]
    assert result["scored"] == 11 and result["metrics"]["val_accuracy"] == pytest.approx(6 / 11)
    assert result["metrics"]["val_loss"] == pytest.approx(result["loss"], rel=1e-5)


@pytest.mark.slow
def test_next_token_perplexity_is_logged(tmp_path):
    import numpy as np

    tokens = tmp_path / "tokens.npy"
    np.save(tokens, np.frombuffer(b"abcabcabd " * 400, dtype=np.uint8).astype(np.int64))
    spec = tmp_path / "gpt.yaml"
    text = (ROOT / "specs" / "zoo" / "gpt.yaml").read_text()
    spec.write_text(
        text + f"train:\n  batch_size: 16\n  data: {{dataset: tokens, path: '{tokens}'}}\n  optimizer: {{type: adamw, lr: 3.0e-3}}\n"
    )
    module, data = from_spec(spec, block_size=16, vocab_size=128, n_layer=1, n_head=2, n_embd=32)
    trainer = lightning.Trainer(max_epochs=2, enable_checkpointing=False, **QUIET)
    trainer.fit(module, data)
    assert float(trainer.callback_metrics["val_perplexity"]) < 3.0
