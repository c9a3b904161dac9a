"""Training that goes wrong says where: a setting torch refuses is located in the train section, a bad
--resume is a usage error that leaves the run directory as it was, a schedule bends when a run is
resumed for more epochs, and torchrun's failures end with the child's status."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT
from nncompile.compiler.weights import CHECKPOINT_FORMAT as FORMAT
from test_train import HANG, Child

from nncompile.cli import main

TRAIN = [sys.executable, "-m", "nncompile.cli", "train"]
"""`nncompile train` in a process of its own."""

SPEC = """\
nncompile: 1
name: small
inputs: {image: [1, 8, 8]}
layers:
  - {op: flatten}
  - {id: fc1, op: linear, out: 16, activation: relu}
  - {id: fc2, op: linear, out: 10}
train:
  epochs: 1
  batch_size: 128
  data: {dataset: digits}
  optimizer: {type: sgd, lr: 0.1}
"""


def test_a_setting_torch_refuses_is_located_in_the_train_section(write_spec, tmp_path, capsys):
    status = main(["train", str(write_spec(SPEC)), "--out", str(tmp_path / "run"), "--set", "train.optimizer.nesterov=true"])
    out = capsys.readouterr()
    assert status == 1
    assert "error[E0502]: torch.optim refuses these settings: Nesterov momentum requires" in out.out
    assert "--resume" not in out.out + out.err


def test_an_unreadable_resume_is_a_usage_error_and_leaves_the_run_alone(write_spec, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "spec.yaml").write_text("before\n")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x80\x04not a checkpoint")
    assert main(["train", str(write_spec(SPEC)), "--out", str(run), "--resume", str(garbage)]) == 2
    err = capsys.readouterr().err
    assert f"--resume {garbage}: cannot read {garbage} as a checkpoint" in err
    assert "weights_only=False" not in err
    assert (run / "spec.yaml").read_text() == "before\n"


def test_a_crafted_checkpoint_is_refused_with_what_is_wrong(write_spec, tmp_path, capsys):
    spec = write_spec(SPEC)
    for name, state in {"no_model": {"format": FORMAT, "version": 1}, "bad_rng": None}.items():
        if state is None:
            assert main(["train", str(spec), "--out", str(tmp_path / "good")]) == 0
            state = torch.load(tmp_path / "good" / "last.pt", weights_only=True)
            state["rng"]["torch"] = torch.zeros(3, dtype=torch.uint8)
        path = tmp_path / f"{name}.pt"
        torch.save(state, path)
        assert main(["train", str(spec), "--out", str(tmp_path / name), "--resume", str(path)]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and "--resume" in err and ("damaged" in err or "does not fit" in err)


def test_onecycle_bends_when_a_run_is_resumed_for_more_epochs(write_spec, tmp_path):
    spec = write_spec(SPEC.replace("optimizer: {type: sgd, lr: 0.1}", "optimizer: {type: sgd, lr: 0.1}\n  schedule: {type: onecycle}"))
    run = tmp_path / "run"
    assert main(["train", str(spec), "--out", str(run)]) == 0
    assert main(["train", str(spec), "--out", str(run), "--resume", str(run / "last.pt"), "--set", "train.epochs=3"]) == 0
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3


@pytest.mark.slow
def test_a_failing_child_under_torchrun_ends_with_its_status(write_spec, tmp_path):
    spec = write_spec(SPEC.replace("data: {dataset: digits}", "data: {dataset: tensors, path: missing.pt}"))
    command = [*TRAIN, str(spec), "--out", str(tmp_path / "run"), "--nproc-per-node", "2"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=HANG)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "error[E0501]: no such file: missing.pt" in result.stdout, result.stdout[-2000:]  # the child's own diagnostic
    assert "AttributeError" not in result.stderr


@pytest.mark.slow
def test_ctrl_c_under_torchrun_saves_and_ends_with_130(write_spec, tmp_path):
    """SIGINT to the launcher: torchrun stops its children, which finish their step, agree to stop,
    save last.pt and exit; the launcher ends with 130, not a traceback."""
    spec = write_spec(SPEC.replace("epochs: 1", "epochs: 500").replace("batch_size: 128", "batch_size: 4"))
    run = tmp_path / "run"
    command = [
        *TRAIN,
        str(spec),
        "--out",
        str(run),
        "--nproc-per-node",
        "2",
        "--device",
        "cpu",
    ]
    launcher = Child(command, cwd=tmp_path)
    launcher.wait_for("epoch 1/500")  # both children are training, their Ctrl-C handlers installed
    launcher.process.send_signal(signal.SIGINT)
    status, output, errors = launcher.finish()
    assert status == 130, errors[-2000:]
    assert "interrupted: saved" in output and "Traceback" not in errors
    assert torch.load(run / "last.pt", weights_only=True)["position"]["step"] > 0


@pytest.mark.slow
def test_ddp_trains_a_spec_with_an_unused_layer(write_spec, tmp_path):
    spec = write_spec(
        SPEC.replace(
            "  - {id: fc2, op: linear, out: 10}",
            "  - {id: spare, op: linear, out: 3, from: fc1}\n  - {id: fc2, op: linear, out: 10, from: fc1}",
        )
    )
    command = [*TRAIN, str(spec), "--out", str(tmp_path / "run"), "--nproc-per-node", "2"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=HANG)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "run" / "last.pt").is_file()


@pytest.mark.slow
def test_two_nodes_on_one_machine(write_spec, tmp_path):
    """`--nnodes 2 --nproc-per-node 1` with a local rendezvous: two launchers, one process each."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spec = write_spec(SPEC)
    common = ["--nnodes", "2", "--nproc-per-node", "1", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "nncompile-test"]
    launchers = [
        Child(
            [
                *TRAIN,
                str(spec),
                "--out",
                str(tmp_path / "run"),
                *common,
                "--node-rank",
                str(rank),
            ]
        )
        for rank in range(2)
    ]
    results = [launcher.finish() for launcher in launchers]
    assert [status for status, _, _ in results] == [0, 0], [errors[-1500:] for _, _, errors in results]
    assert (tmp_path / "run" / "last.pt").is_file()


def test_the_run_directory_lists_only_what_was_written(write_spec, tmp_path, capsys):
    assert main(["train", str(write_spec(SPEC)), "--out", str(tmp_path / "run")]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    listed = line.split("(")[1].rstrip(")").split(", ")
    assert all((tmp_path / "run" / name).exists() for name in listed) and "model.ts" in listed


def test_seed_too_large_is_a_located_diagnostic(write_spec, capsys):
    spec = write_spec(SPEC.replace("epochs: 1", "epochs: 1\n  seed: 18446744073709551616"))
    assert main(["check", str(spec)]) == 1
    assert "E0101" in capsys.readouterr().out


ROOT_PATH = Path(ROOT)
