"""Hostile training input and the loop's corners: data and weights files that must be refused with a
located error (never a traceback, never unbounded memory or time), links planted in the run directory
(replaced, never written through), a one-sample last batch, every loss with the target dtypes a user
gives, layers named like DDP's attributes, fewer GPUs on resume, a schedule resumed with fewer steps,
SyncBatchNorm's model.ts, and the Lightning adapter's accuracy against the loop's."""

from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path

import pytest
import torch
from nncompile.compiler.export import quiet_torchscript
from nncompile.compiler.weights import CHECKPOINT_FORMAT as FORMAT
from nncompile.runtime import data as data_module
from nncompile.runtime import trainer
from torch import nn

from nncompile.cli import main

SPEC = """\
nncompile: 1
name: tiny
inputs: {x: [4]}
layers:
  - {id: fc1, op: linear, out: 8, activation: relu}
  - {id: fc2, op: linear, out: 3}
train:
  epochs: 1
  batch_size: 8
  data: {dataset: tensors, path: DATA}
  optimizer: {type: sgd, lr: 0.1}
"""

BATCHNORM = SPEC.replace("activation: relu}", "}\n  - {op: batchnorm1d}")


def samples(count: int = 21) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` samples of 4 features and their labels 0..2 (21: 17 to train on, 4 held out)."""
    generator = torch.Generator().manual_seed(0)
    return torch.randn(count, 4, generator=generator), torch.randint(0, 3, (count,), generator=generator)


def train(write_spec, tmp_path: Path, found: object, *argv: str, spec: str = SPEC) -> int:
    """`nncompile train` (into tmp_path/run) on a tensors file holding `found`; its exit status."""
    path = tmp_path / "data.pt"
    torch.save(found, path)
    return main(["train", str(write_spec(spec.replace("DATA", str(path)))), "--out", str(tmp_path / "run"), *argv])


def run_train(write_spec, tmp_path: Path, capsys, found: object, *argv: str, spec: str = SPEC) -> tuple[int, str]:
    """`train`, and what it printed."""
    status = train(write_spec, tmp_path, found, *argv, spec=spec)
    out = capsys.readouterr()
    return status, out.out + out.err


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


# -- data files --------------------------------------------------------------------------------------

x, y = samples()
HOSTILE_TENSORS = {
    "bool inputs": ({"inputs": x > 0, "targets": y}, "bool"),
    "complex inputs": ({"inputs": x.to(torch.complex64), "targets": y}, "complex64"),
    "sparse inputs": ({"inputs": x.to_sparse(), "targets": y}, "sparse"),
    "meta inputs": ({"inputs": torch.zeros(21, 4, device="meta"), "targets": y}, "no data"),
    "expanded view": (
        {"inputs": torch.zeros(1, 4).expand(2**33, 4), "targets": torch.zeros(1, dtype=torch.long).expand(2**33)},
        "a view",
    ),
    "scalar labels": ({"inputs": x, "targets": torch.tensor(1)}, "one row per sample"),
    "negative labels": ({"inputs": x, "targets": y - 1}, "negative"),
    "nested dict": ({"inputs": {"x": {"deeper": x}}, "targets": y}, "must hold 'inputs' and 'targets'"),
    "non-string names": ({"inputs": {1: x}, "targets": y}, "must hold 'inputs' and 'targets'"),
}


@pytest.mark.parametrize("case", list(HOSTILE_TENSORS))
def test_a_hostile_tensors_file_is_a_located_error(write_spec, tmp_path, capsys, case):
    found, message = HOSTILE_TENSORS[case]
    status, out = run_train(write_spec, tmp_path, capsys, found)
    assert status == 1, out
    assert "error[E05" in out and "Traceback" not in out
    assert message in out
    assert not (tmp_path / "run" / "last.pt").exists()


def test_targets_by_name_with_one_loss_is_a_located_error(write_spec, tmp_path, capsys):
    found = {"inputs": x, "targets": {"fc2": torch.randn(21, 3)}}
    status, out = run_train(write_spec, tmp_path, capsys, found, "--set", "train.loss=mse")
    assert status == 1, out
    assert "error[E0502]" in out and "loss per output" in out


def test_labels_equal_to_ignore_index_are_not_refused(write_spec, tmp_path, capsys):
    labels = y.clone()
    labels[:5] = -1
    spec = SPEC.replace("optimizer:", "loss: {type: cross_entropy, ignore_index: -1}\n  optimizer:")
    status, out = run_train(write_spec, tmp_path, capsys, {"inputs": x, "targets": labels}, spec=spec)
    assert status == 0, out


TOKENS = """\
nncompile: 1
name: lm
inputs: {ids: {shape: [8], dtype: int64}}
layers:
  - {id: embed, op: embedding, num: 16, dim: 8}
  - {id: head, op: linear, out: 16}
train:
  epochs: 1
  batch_size: 4
  data: {dataset: tokens, path: DATA, vocab_size: 16}
  optimizer: {type: sgd, lr: 0.1}
"""


def tokens_spec(write_spec, tmp_path: Path, ids: torch.Tensor, extra: str = "") -> Path:
    path = tmp_path / "tokens.pt"
    torch.save(ids, path)
    return write_spec(TOKENS.replace("DATA", str(path)).replace("vocab_size: 16", "vocab_size: 16" + extra))


def test_token_ids_beyond_the_vocabulary_are_a_located_error(write_spec, tmp_path, capsys):
    ids = torch.randint(0, 16, (400,))
    ids[123] = 40
    assert main(["train", str(tokens_spec(write_spec, tmp_path, ids)), "--out", str(tmp_path / "run")]) == 1
    out = capsys.readouterr().out
    assert "spec.yaml:10:" in out and "error[E0501]: the file holds token id 40, beyond vocab_size 16" in out


@pytest.mark.parametrize(
    "ids",
    [torch.zeros(1, dtype=torch.long).expand(2**33), torch.ones(400, dtype=torch.bool), torch.zeros(400, dtype=torch.long).to_sparse()],
)
def test_a_hostile_tokens_file_is_a_located_error(write_spec, tmp_path, capsys, ids):
    assert main(["train", str(tokens_spec(write_spec, tmp_path, ids)), "--out", str(tmp_path / "run")]) == 1
    out = capsys.readouterr().out
    assert "spec.yaml:10:" in out and "error[E0501]: cannot read" in out and "token ids" in out


@pytest.mark.parametrize("command", ["check", "train"])
def test_a_quadrillion_token_windows_are_refused(write_spec, tmp_path, capsys, command):
    spec = tokens_spec(write_spec, tmp_path, torch.randint(0, 16, (400,)), ", samples: 1000000000000000")
    assert main([command, str(spec), *(["--out", str(tmp_path / "run")] if command == "train" else [])]) == 1
    out = capsys.readouterr().out
    assert "spec.yaml:10:" in out and "error[E0203]: train.data: 'samples' must be at most 100000000" in out


FAKE = """\
nncompile: 1
name: fake
inputs: {image: [3, 8, 8]}
layers:
  - {op: flatten}
  - {id: fc, op: linear, out: 10}
train:
  epochs: 1
  batch_size: 8
  data: {dataset: fake, size: 1000000000000, image_size: [3, 8, 8], num_classes: 10}
  optimizer: {type: sgd, lr: 0.1}
"""


@pytest.mark.parametrize("command", ["check", "train"])
def test_a_trillion_fake_images_are_refused(write_spec, tmp_path, capsys, command):
    assert main([command, str(write_spec(FAKE)), *(["--out", str(tmp_path / "run")] if command == "train" else [])]) == 1
    out = capsys.readouterr().out
    assert "spec.yaml:10:31: error[E0203]: train.data: 'size' must be at most 100000000" in out


def test_an_image_folder_scan_is_bounded(write_spec, tmp_path, capsys, monkeypatch):
    root = tmp_path / "images"
    for label in ("a", "b"):
        (root / label / "deeper").mkdir(parents=True)
        for index in range(10):
            (root / label / "deeper" / f"{index}.png").write_bytes(b"")
    monkeypatch.setattr(data_module, "IMAGE_FOLDER_LIMIT", 15)
    spec = FAKE.replace(
        "{dataset: fake, size: 1000000000000, image_size: [3, 8, 8], num_classes: 10}", f"{{dataset: image_folder, root: {root}}}"
    )
    assert main(["train", str(write_spec(spec)), "--out", str(tmp_path / "run")]) == 1
    out = capsys.readouterr().out
    assert "spec.yaml:10:" in out and "error[E0501]" in out and "more than 15 files and folders" in out


def test_an_image_folder_is_scanned_once_and_reads_its_classes(tmp_path):
    from PIL import Image

    root = tmp_path / "images"
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        for index in range(3):
            Image.new("RGB", (8, 8), (index * 40, 0, 0)).save(root / label / f"{index}.png")
        (root / label / "notes.txt").write_text("not an image")
    source = data_module._read({"dataset": "image_folder", "root": str(root)})
    assert source.num_classes == 2
    dataset = source.make(None, True)
    assert len(dataset) == 6 and [dataset[i][1] for i in range(6)] == [0, 0, 0, 1, 1, 1]
    assert dataset[0][0].size == (8, 8)


# -- weights files -----------------------------------------------------------------------------------

INIT = SPEC.replace("optimizer:", "init: {from: WEIGHTS}\n  optimizer:")
HOSTILE_WEIGHTS = {
    "checkpoint without a model": {"format": FORMAT, "version": 1},
    "non-string keys": {1: torch.zeros(8, 4)},
    "meta tensors": {"fc1.weight": torch.zeros(8, 4, device="meta")},
    "sparse tensors": {"fc1.weight": torch.zeros(8, 4).to_sparse()},
    "expanded view": {"fc1.weight": torch.zeros(1, 4).expand(2**33, 4)},
}


@pytest.mark.parametrize("case", list(HOSTILE_WEIGHTS))
def test_hostile_init_weights_are_a_located_error(write_spec, tmp_path, capsys, case):
    weights = tmp_path / "weights.pt"
    torch.save(HOSTILE_WEIGHTS[case], weights)
    status, out = run_train(write_spec, tmp_path, capsys, {"inputs": x, "targets": y}, spec=INIT.replace("WEIGHTS", str(weights)))
    assert status == 1, out
    assert "error[E0503]" in out and "Traceback" not in out


@pytest.mark.parametrize("case", ["meta tensors", "sparse tensors", "expanded view"])
def test_a_hostile_checkpoint_to_resume_is_refused(write_spec, tmp_path, capsys, case):
    assert train(write_spec, tmp_path, {"inputs": x, "targets": y}) == 0
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    state["model"]["fc1.weight"] = HOSTILE_WEIGHTS[case]["fc1.weight"]
    torch.save(state, tmp_path / "hostile.pt")
    capsys.readouterr()
    status, out = run_train(write_spec, tmp_path, capsys, {"inputs": x, "targets": y}, "--resume", str(tmp_path / "hostile.pt"))
    assert status == 2 and "--resume" in out and "Traceback" not in out


# -- the run directory -------------------------------------------------------------------------------

RUN_FILES = ("metrics.jsonl", "model.ts", "spec.yaml", "last.pt", "best.pt")


def plant_links(run: Path, victims: Path) -> None:
    run.mkdir(parents=True, exist_ok=True)
    victims.mkdir()
    for name in RUN_FILES:
        (victims / name).write_text("precious\n")
        (run / name).symlink_to(victims / name)


def test_links_planted_in_the_run_directory_are_replaced_not_written_through(write_spec, tmp_path, capsys):
    plant_links(tmp_path / "run", tmp_path / "victims")
    status, out = run_train(write_spec, tmp_path, capsys, {"inputs": x, "targets": y})
    assert status == 0, out
    for name in RUN_FILES:
        assert (tmp_path / "victims" / name).read_text() == "precious\n", name
        assert (tmp_path / "run" / name).is_file() and not (tmp_path / "run" / name).is_symlink(), name
    assert len(records(tmp_path / "run")) == 1


def test_a_resume_truncates_metrics_without_following_a_link(write_spec, tmp_path, capsys):
    assert train(write_spec, tmp_path, {"inputs": x, "targets": y}, "--set", "train.epochs=2") == 0
    run = tmp_path / "run"
    state = torch.load(run / "last.pt", weights_only=True)
    state["position"]["epoch"] = 1
    torch.save(state, tmp_path / "epoch1.pt")
    victim = tmp_path / "victim.jsonl"
    victim.write_text((run / "metrics.jsonl").read_text() + "not json\n")
    (run / "metrics.jsonl").unlink()
    (run / "metrics.jsonl").symlink_to(victim)
    before = victim.read_text()
    status, out = run_train(
        write_spec, tmp_path, capsys, {"inputs": x, "targets": y}, "--set", "train.epochs=2", "--resume", str(tmp_path / "epoch1.pt")
    )
    assert status == 0, out
    assert victim.read_text() == before
    assert not (run / "metrics.jsonl").is_symlink() and [r["epoch"] for r in records(run)] == [2]


def test_a_fresh_run_starts_metrics_afresh_and_checkpoints_get_the_umask_mode(write_spec, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"epoch": 7}\nnot json\n')
    previous = os.umask(0o022)
    try:
        status, out = run_train(write_spec, tmp_path, capsys, {"inputs": x, "targets": y})
    finally:
        os.umask(previous)
    assert status == 0, out
    assert [r["epoch"] for r in records(run)] == [1]
    for name in RUN_FILES:
        assert stat.S_IMODE((run / name).stat().st_mode) == 0o644, name


# -- the loop's corners ------------------------------------------------------------------------------


def test_a_one_sample_last_batch_is_dropped_so_batchnorm_trains(write_spec, tmp_path, capsys):
    status, out = run_train(write_spec, tmp_path, capsys, {"inputs": x, "targets": y}, "--set", "train.compile=false", spec=BATCHNORM)
    assert status == 0, out
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["position"]["step"] == 2  # 17 samples in batches of 8: 8, 8 and a dropped 1


def test_batches_of_one_with_batchnorm_are_a_located_error(write_spec, tmp_path, capsys):
    status, out = run_train(write_spec, tmp_path, capsys, {"inputs": x, "targets": y}, "--set", "train.batch_size=1", spec=BATCHNORM)
    assert status == 1, out
    assert "error[E0502]: BatchNorm cannot train on batches of one sample" in out


TARGETS = {
    "cross_entropy": [torch.long, torch.int32, torch.uint8],
    "nll": [torch.long, torch.int16, torch.uint8],
    "mse": [torch.float32, torch.float64, torch.long, torch.uint8],
    "l1": [torch.float32, torch.float16, torch.int32],
    "smooth_l1": [torch.float64, torch.long],
    "bce_with_logits": [torch.float32, torch.long, torch.uint8],
}


@pytest.mark.parametrize("loss,dtype", [(loss, dtype) for loss, dtypes in TARGETS.items() for dtype in dtypes])
def test_every_loss_trains_on_the_target_dtypes_a_user_gives(write_spec, tmp_path, capsys, loss, dtype):
    labels = y if loss in ("cross_entropy", "nll") else torch.randint(0, 2, (21, 3))
    status, out = run_train(write_spec, tmp_path, capsys, {"inputs": x, "targets": labels.to(dtype)}, "--set", f"train.loss={loss}")
    assert status == 0, out
    (record,) = records(tmp_path / "run")
    assert torch.isfinite(torch.tensor([record["train_loss"], record["val_loss"]])).all()


def test_a_classification_loss_on_float_targets_is_a_located_error(write_spec, tmp_path, capsys):
    status, out = run_train(write_spec, tmp_path, capsys, {"inputs": x, "targets": y.float()}, "--set", "train.loss=nll")
    assert status == 1 and "error[E0502]" in out and "integer class labels" in out


@pytest.mark.parametrize("name", ["no_sync", "module", "forward_hooks"])
def test_a_layer_named_like_a_ddp_attribute_trains_with_accumulation(write_spec, tmp_path, capsys, name):
    spec = SPEC.replace("id: fc1", f"id: {name}").replace("batch_size: 8", "batch_size: 4\n  accumulate: 2")
    status, out = run_train(write_spec, tmp_path, capsys, {"inputs": x, "targets": y}, spec=spec)
    assert status == 0, out


def test_resume_with_fewer_steps_per_epoch_under_onecycle_ends_the_cycle(write_spec, tmp_path, capsys):
    spec = SPEC.replace("optimizer: {type: sgd, lr: 0.1}", "optimizer: {type: sgd, lr: 0.1}\n  schedule: {type: onecycle}")
    spec = spec.replace("batch_size: 8", "batch_size: 4")
    assert train(write_spec, tmp_path, {"inputs": x, "targets": y}, spec=spec) == 0
    run = tmp_path / "run"
    status, out = run_train(
        write_spec,
        tmp_path,
        capsys,
        {"inputs": x, "targets": y},
        "--set",
        "train.epochs=2",
        "--set",
        "train.batch_size=8",
        "--resume",
        str(run / "last.pt"),
        spec=spec,
    )
    assert status == 0, out
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["position"]["step"] == 4 + 2  # 17 samples: 4 steps of 4 (one dropped), then 2 of 8
    assert state["scheduler"]["total_steps"] == 6
    parameter = nn.Parameter(torch.zeros(1))
    reference = torch.optim.SGD([parameter], lr=0.1)
    cycle = torch.optim.lr_scheduler.OneCycleLR(reference, max_lr=0.1, total_steps=6)
    for _ in range(6):
        reference.step()
        cycle.step()
    assert records(run)[-1]["lr"] == pytest.approx(reference.param_groups[0]["lr"])  # where a 6-step cycle ends


def test_resume_restores_only_the_gpus_this_machine_has(monkeypatch):
    restored = []

    def set_rng_state(state, device="cuda"):
        index = device if isinstance(device, int) else 0
        if index >= 1:
            raise RuntimeError(f"CUDA error: invalid device ordinal {index}")
        restored.append(index)

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state", set_rng_state)
    monkeypatch.setattr(torch.cuda.random, "set_rng_state", set_rng_state)
    trainer.restore_cuda_rng([torch.zeros(16, dtype=torch.uint8)] * 4)
    assert restored == [0]


def test_model_ts_of_a_sync_batchnorm_model_is_the_plain_model():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(72, 3), nn.BatchNorm1d(3))
    model[1].running_mean.fill_(0.5)
    synced, kinds = trainer.sync_batchnorm(model)
    assert isinstance(synced[1], nn.SyncBatchNorm)
    plain = trainer.export_copy(synced, kinds)
    assert [type(m) for m in plain] == [nn.Conv2d, nn.BatchNorm2d, nn.Flatten, nn.Linear, nn.BatchNorm1d]
    assert torch.equal(plain[1].running_mean, torch.full((2,), 0.5))
    with quiet_torchscript():
        scripted = torch.jit.script(plain.eval())
    inputs = torch.randn(2, 1, 8, 8)
    assert torch.allclose(scripted(inputs), plain(inputs))


# -- Lightning ---------------------------------------------------------------------------------------


def test_lightning_accuracy_is_the_loops_with_ignored_labels(write_spec, tmp_path):
    lightning = pytest.importorskip("lightning")
    from nncompile.runtime.lightning import from_spec
    from nncompile.runtime.loop import Tally, evaluate

    path = tmp_path / "data.pt"
    spec = SPEC.replace("DATA", str(path)).replace("optimizer:", "loss: {type: cross_entropy, ignore_index: -1}\n  optimizer:")
    module, data = from_spec(write_spec(spec.replace("tensors, path", "tensors, workers: 0, val_split: 0.5, path")))
    with torch.no_grad():
        predicted = module.model(x).argmax(-1)
    labels = torch.stack([predicted, (predicted + 1) % 3, torch.full_like(predicted, -1)]).T.reshape(-1)[:21]
    torch.save({"inputs": x, "targets": labels}, path)  # one right, one wrong, one ignored, and again
    runner = lightning.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    (metrics,) = runner.validate(module, data, verbose=False)
    val = data.data.val
    ours = evaluate(
        module.model,
        module.loss,
        iter([(val.inputs, val.targets)]),
        Tally(torch.device("cpu"), 3, False, -1),
        contextlib.nullcontext,
        False,
    )
    kept = val.targets != -1
    expected = (predicted_of(module.model, val.inputs)[kept] == val.targets[kept]).float().mean().item()
    assert 0 < expected < 1 and kept.sum() < len(kept)
    assert metrics["val_accuracy"] == pytest.approx(expected) == pytest.approx(ours["val_accuracy"])
    assert metrics["val_loss"] == pytest.approx(ours["val_loss"], rel=1e-5)  # both a mean over the scored labels


def predicted_of(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(inputs).argmax(-1)


def test_a_batch_whose_labels_are_all_ignored_leaves_the_tally_finite():
    from nncompile.runtime.loop import Tally
    from nncompile.runtime.optim import loss_function

    loss_fn = loss_function({"loss": {"type": "cross_entropy", "ignore_index": -1}})
    tally = Tally(torch.device("cpu"), 3, False, -1)
    scores = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    for labels in (torch.tensor([-1, -1]), torch.tensor([0, 2])):
        tally.add(loss_fn(scores, labels), scores, labels)
    result = tally.result("val")
    assert result["val_accuracy"] == 0.5
    assert result["val_loss"] == pytest.approx(loss_fn(scores, torch.tensor([0, 2])).item())


@pytest.mark.slow
def test_a_layer_named_no_sync_trains_with_accumulation_under_ddp(write_spec, tmp_path):
    from test_train import cli

    path = tmp_path / "data.pt"
    torch.save({"inputs": x, "targets": y}, path)
    spec = SPEC.replace("DATA", str(path)).replace("id: fc1", "id: no_sync").replace("batch_size: 8", "batch_size: 2\n  accumulate: 2")
    result = cli("train", str(write_spec(spec)), "--out", str(tmp_path / "run"), "--nproc-per-node", "2", "--device", "cpu")
    assert result.returncode == 0, result.stderr[-3000:]
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["position"]["step"] == 2  # 17 samples over 2 processes: 9 each, 4 batches of 2 (the ninth dropped), 2 a step
