"""`nncompile train` and `runtime.train`: accuracy, exact resume, crashes, run directory, diagnostics."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import ROOT

from compiler.diagnostics import SpecError
from runtime import train
from runtime.checkpoint import load
from runtime.cli import main

SMALL = """\
nncompile: 1
name: small
params: {hidden: 32}
inputs: {image: [1, 8, 8]}
layers:
  - {op: flatten}
  - {id: fc1, op: linear, out: $hidden, activation: relu}
  - {op: dropout, p: 0.2}
  - {id: fc2, op: linear, out: 10}
train:
  epochs: 2
  batch_size: 64
  data: {dataset: digits}
  optimizer: {type: adamw, lr: 3.0e-3}
"""


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load(path)["model"]


def assert_identical(left: dict[str, torch.Tensor], right: dict[str, torch.Tensor]) -> None:
    assert left.keys() == right.keys()
    for key in left:
        assert torch.equal(left[key], right[key]), key


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def cli(*argv: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runtime.cli", *argv], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def test_digits_spec_beats_sklearn_mlp(tmp_path):
    """Accuracy, not time: the wall-clock speed of training lives in benchmarks/ (a busy machine
    makes any time limit here fail for no reason)."""
    assert main(["train", str(ROOT / "specs" / "digits_mlp.yaml"), "--out", str(tmp_path)]) == 0
    history = records(tmp_path)
    assert {"epoch", "train_loss", "val_loss", "val_accuracy"} <= history[0].keys()
    assert max(r["val_accuracy"] for r in history) >= 0.97
    for name in ("last.pt", "best.pt", "model.ts", "spec.yaml", "metrics.jsonl"):
        assert (tmp_path / name).is_file(), name


def test_run_directory_reloads_without_nncompile(tmp_path, write_spec):
    spec = write_spec(SMALL)
    assert main(["train", str(spec), "--out", str(tmp_path / "run")]) == 0
    run = tmp_path / "run"
    best = load(run / "best.pt")
    code = (
        "import sys, torch; m = torch.jit.load(sys.argv[1]); x = torch.load(sys.argv[2]);"
        "assert 'compiler' not in sys.modules and 'runtime' not in sys.modules; torch.save(m(x), sys.argv[3])"
    )
    inputs = torch.rand(3, 1, 8, 8)
    torch.save(inputs, tmp_path / "x.pt")
    subprocess.run(
        [sys.executable, "-c", code, str(run / "model.ts"), str(tmp_path / "x.pt"), str(tmp_path / "y.pt")], check=True, cwd=tmp_path
    )
    from compiler import build

    model = build(run / "spec.yaml").eval()
    model.load_state_dict(best["model"])
    assert torch.allclose(model(inputs), torch.load(tmp_path / "y.pt"), atol=1e-6)


def test_resume_is_bit_identical_to_a_straight_run(tmp_path, write_spec):
    spec = write_spec(
        SMALL.replace(
            "  epochs: 2\n", "  epochs: 2\n  accumulate: 2\n  clip_grad_norm: 1.0\n  schedule: {type: step, step_size: 1, gamma: 0.5}\n"
        )
    )
    assert main(["train", str(spec), "--out", str(tmp_path / "straight")]) == 0
    assert main(["train", str(spec), "--out", str(tmp_path / "split"), "--set", "train.epochs=1"]) == 0
    assert main(["train", str(spec), "--out", str(tmp_path / "split"), "--resume", str(tmp_path / "split" / "last.pt")]) == 0
    assert_identical(weights(tmp_path / "straight" / "last.pt"), weights(tmp_path / "split" / "last.pt"))
    straight, split = records(tmp_path / "straight"), records(tmp_path / "split")
    assert [r["epoch"] for r in split] == [1, 2]
    assert [r["val_loss"] for r in split] == [r["val_loss"] for r in straight]


def test_sigkill_mid_epoch_leaves_a_resumable_last_pt(tmp_path, write_spec):
    spec = write_spec(SMALL.replace("epochs: 2", "epochs: 12").replace("batch_size: 64", "batch_size: 4"))
    straight = tmp_path / "straight"
    assert main(["train", str(spec), "--out", str(straight)]) == 0
    run = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "train", str(spec), "--out", str(run)], cwd=ROOT, stdout=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while not ((run / "metrics.jsonl").exists() and len(records(run)) >= 2) and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = len(records(run))
    assert 2 <= done < 12, "killed mid-run"
    assert load(run / "last.pt")["position"]["epoch"] in (done, done - 1)
    assert main(["train", str(spec), "--out", str(run), "--resume", str(run / "last.pt")]) == 0
    assert [r["epoch"] for r in records(run)] == list(range(1, 13))
    assert_identical(weights(straight / "last.pt"), weights(run / "last.pt"))


def test_ctrl_c_saves_last_pt_and_exits_130(tmp_path, write_spec):
    spec = write_spec(SMALL.replace("epochs: 2", "epochs: 500").replace("batch_size: 64", "batch_size: 4"))
    run = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "train", str(spec), "--out", str(run)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while not (run / "metrics.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output
    assert "interrupted: saved" in output
    position = load(run / "last.pt")["position"]
    assert position["epoch"] >= 1 and position["step"] > 0


def test_two_processes_under_torchrun_write_one_run_directory(tmp_path, write_spec):
    spec = write_spec(SMALL)
    result = cli("train", str(spec), "--out", str(tmp_path / "run"), "--nproc-per-node", "2", "--device", "cpu")
    assert result.returncode == 0, result.stderr[-3000:]
    assert [r["epoch"] for r in records(tmp_path / "run")] == [1, 2]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["best.pt", "last.pt", "metrics.jsonl", "model.ts", "spec.yaml"]
    assert result.stdout.count("epoch 1/2") == 1, "rank 0 alone logs"


@pytest.mark.parametrize(
    "schedule",
    [
        "{type: constant, warmup_epochs: 0.5}",
        "{type: step, step_size: 1}",
        "{type: cosine, min_lr: 1.0e-5, warmup_epochs: 1}",
        "{type: onecycle, max_lr: 1.0e-2}",
        "{type: plateau, patience: 0, factor: 0.5}",
    ],
)
def test_every_schedule_trains_and_checkpoints_load_weights_only(tmp_path, write_spec, schedule):
    spec = write_spec(SMALL + f"  schedule: {schedule}\n")
    assert main(["train", str(spec), "--out", str(tmp_path)]) == 0
    state = load(tmp_path / "last.pt")
    assert state["scheduler"] is not None
    lrs = [r["lr"] for r in records(tmp_path)]
    assert all(lr > 0 for lr in lrs)


@pytest.mark.parametrize(
    "optimizer", ["{type: sgd, lr: 0.05, momentum: 0.9, nesterov: true}", "{type: rmsprop, lr: 1.0e-3}", "{type: adagrad, lr: 0.05}"]
)
def test_optimizers_and_bf16_autocast_train(tmp_path, write_spec, optimizer):
    spec = write_spec(SMALL.replace("optimizer: {type: adamw, lr: 3.0e-3}", f"optimizer: {optimizer}\n  amp: bf16"))
    assert main(["train", str(spec), "--out", str(tmp_path)]) == 0
    history = records(tmp_path)
    assert history[-1]["val_loss"] < history[0]["train_loss"]


def test_runtime_train_takes_any_module():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    run = train(model, {"epochs": 3, "data": {"dataset": "digits"}, "optimizer": {"type": "sgd", "lr": 0.1}})
    assert run.stopped == "completed" and run.out is None
    assert run.history[-1]["val_accuracy"] > 0.85


def test_runtime_train_rejects_a_bad_section_with_its_path():
    with pytest.raises(SpecError, match=r"train\.optimizer: 'lr' must be above 0"):
        train(torch.nn.Linear(1, 1), {"data": {"dataset": "digits"}, "optimizer": {"type": "sgd", "lr": -1}})


def test_early_stopping_stops(tmp_path, write_spec):
    spec = write_spec(SMALL.replace("epochs: 2", "epochs: 50") + "  early_stopping: {metric: val_loss, patience: 1, min_delta: 10}\n")
    assert main(["train", str(spec), "--out", str(tmp_path)]) == 0
    assert len(records(tmp_path)) == 2


def test_config_file_and_set_override_the_train_section(tmp_path, write_spec):
    spec = write_spec(SMALL)
    config = tmp_path / "train.yaml"
    config.write_text("epochs: 5\noptimizer: {lr: 1.0e-2}\n")
    assert main(["train", str(spec), "--out", str(tmp_path / "run"), "--config", str(config), "--set", "train.epochs=1"]) == 0
    resolved = (tmp_path / "run" / "spec.yaml").read_text()
    assert "epochs: 1" in resolved and "lr: 0.01" in resolved and "type: adamw" in resolved
    assert len(records(tmp_path / "run")) == 1
