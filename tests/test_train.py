"""`nncompile train` and `runtime.train`: accuracy, exact resume, crashes, run directory, diagnostics."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
import yaml
from conftest import ROOT
from nncompile.compiler.diagnostics import SpecError
from nncompile.runtime import train
from nncompile.runtime.checkpoint import load
from nncompile.runtime.config import checked
from nncompile.runtime.data import load as load_data

from nncompile import compiler
from nncompile.cli import main

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


class Probe(torch.nn.Module):
    """Wraps a model and records what each forward call saw: the inputs, their layout and the autocast dtype."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.seen: list[dict] = []

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        output = self.model(inputs)
        self.seen.append(
            {
                "inputs": inputs.detach().clone(),
                "shape": tuple(inputs.shape),
                "channels_last": inputs.dim() == 4
                and inputs.is_contiguous(memory_format=torch.channels_last)
                and not inputs.is_contiguous(),
                "autocast": torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None,
                "output": output.dtype,
                "training": self.training,
            }
        )
        return output


def section(spec_text: str) -> dict:
    """The train section of a spec, as plain data for `runtime.train`."""
    return yaml.safe_load(spec_text)["train"]


HANG = 1800
"""Seconds after which a child process counts as hung: a guard against hangs, never a speed test (a
busy machine runs these ten times slower than an idle one)."""


def cli(*argv: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "nncompile.cli", *argv]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=HANG)


class Child:
    """A process run in the background whose output is read line by line as it comes, so that a test
    can wait for a line (an event) instead of polling files or sleeping."""

    def __init__(self, command: list[str], cwd: Path = ROOT):
        self.process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.errors: list[str] = []
        self.ended = False
        """Whether stdout has closed (the child ended)."""
        self.changed = threading.Condition()
        self.readers = [threading.Thread(target=self._read, args=args, daemon=True) for args in ((True,), (False,))]
        for reader in self.readers:
            reader.start()

    def _read(self, output: bool) -> None:
        """Collect the lines of stdout (`output`) or stderr; both are drained, so the child never blocks."""
        for line in self.process.stdout if output else self.process.stderr:
            with self.changed:
                (self.lines if output else self.errors).append(line)
                self.changed.notify_all()
        if output:
            with self.changed:
                self.ended = True
                self.changed.notify_all()

    def wait_for(self, text: str) -> None:
        """Return once the child has printed a line holding `text`; fail if it ends (or hangs) first."""

        def seen() -> bool:
            return any(text in line for line in self.lines)

        with self.changed:
            self.changed.wait_for(lambda: seen() or self.ended, timeout=HANG)
            found = seen()
        if not found:
            self.process.kill()
            status, output, errors = self.finish()
            pytest.fail(f"the child never printed {text!r} (status {status}):\n{output[-2000:]}\n{errors[-2000:]}")

    def finish(self) -> tuple[int, str, str]:
        """Wait for the child to end: its status, output and error output."""
        status = self.process.wait(timeout=HANG)
        for reader in self.readers:
            reader.join()
        return status, "".join(self.lines), "".join(self.errors)


@pytest.mark.slow
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
        "assert 'nncompile' not in sys.modules; torch.save(m(x), sys.argv[3])"
    )
    inputs = torch.rand(3, 1, 8, 8)
    torch.save(inputs, tmp_path / "x.pt")
    subprocess.run(
        [sys.executable, "-c", code, str(run / "model.ts"), str(tmp_path / "x.pt"), str(tmp_path / "y.pt")], check=True, cwd=tmp_path
    )
    from nncompile.compiler import build

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


KILLED_AT_STEP = """
import os, signal, sys
from nncompile.runtime import loop
from nncompile.cli import main

step, done, last = loop._optimizer_step, [0], int(sys.argv[3])

def counted(state):
    step(state)
    done[0] += 1
    if done[0] == last:
        os.kill(os.getpid(), signal.SIGKILL)

loop._optimizer_step = counted
sys.exit(main(["train", sys.argv[1], "--out", sys.argv[2]]))
"""
"""`nncompile train SPEC --out RUN` that SIGKILLs itself right after optimizer step N: a kill at a
chosen point of an epoch, with no race against the clock."""


@pytest.mark.slow
def test_sigkill_mid_epoch_leaves_a_resumable_last_pt(tmp_path, write_spec):
    spec = write_spec(SMALL.replace("epochs: 2", "epochs: 4").replace("batch_size: 64", "batch_size: 16"))
    straight = tmp_path / "straight"
    assert main(["train", str(spec), "--out", str(straight)]) == 0
    per_epoch = load(straight / "last.pt")["position"]["step"] // 4
    run = tmp_path / "killed"
    command = [sys.executable, "-c", KILLED_AT_STEP, str(spec), str(run), str(2 * per_epoch + per_epoch // 2)]
    killed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=HANG)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert [r["epoch"] for r in records(run)] == [1, 2], "killed halfway through epoch 3"
    assert load(run / "last.pt")["position"] == {"epoch": 2, "batch": 0, "step": 2 * per_epoch}
    assert main(["train", str(spec), "--out", str(run), "--resume", str(run / "last.pt")]) == 0
    assert [r["epoch"] for r in records(run)] == [1, 2, 3, 4]
    assert_identical(weights(straight / "last.pt"), weights(run / "last.pt"))


@pytest.mark.slow
def test_ctrl_c_saves_last_pt_and_exits_130(tmp_path, write_spec):
    spec = write_spec(SMALL.replace("epochs: 2", "epochs: 500").replace("batch_size: 64", "batch_size: 4"))
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.ts").write_text("from an earlier run")
    child = Child([sys.executable, "-m", "nncompile.cli", "train", str(spec), "--out", str(run)])
    child.wait_for("epoch 1/500")  # epoch 2 is under way, Ctrl-C's handler installed
    child.process.send_signal(signal.SIGINT)
    status, output, errors = child.finish()
    assert status == 130, errors[-2000:]
    assert "interrupted: saved" in output and "Traceback" not in errors
    assert "model.ts" not in output.splitlines()[-1]  # the run directory line names only what this run wrote
    assert (run / "model.ts").read_text() == "from an earlier run"
    position = load(run / "last.pt")["position"]
    assert position["epoch"] >= 1 and position["step"] > 0


RECORDER = """
import os

if os.environ.get("NNCOMPILE_TEST_RECORD"):
    from pathlib import Path

    import torch
    from nncompile.runtime import trainer

    batches, run = trainer.batches, trainer._Trainer.run

    def recorded(self):
        seen = []

        def recording(split, order, *args, **kwargs):
            taken = []
            for inputs, targets in batches(split, order, *args, **kwargs):
                taken.append(targets)
                yield inputs, targets
            if split is self.data.train:
                seen.append({"order": order.clone(), "targets": torch.cat(taken)})

        trainer.batches = recording
        try:
            return run(self)
        finally:
            trainer.batches = batches
            path = Path(os.environ["NNCOMPILE_TEST_RECORD"]) / f"rank{self.rank}.pt"
            torch.save({"epochs": seen, "weights": self.model.state_dict()}, path)

    trainer._Trainer.run = recorded
"""
"""A sitecustomize module for the processes torchrun starts: each writes, per epoch, the training
rows it was given and the targets its batches held, and its weights at the end."""


@pytest.mark.slow
def test_two_processes_under_torchrun_share_the_data_and_end_with_the_same_weights(tmp_path, write_spec):
    spec = write_spec(SMALL)
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(RECORDER)
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")]))}
    env["NNCOMPILE_TEST_RECORD"] = str(tmp_path)
    result = cli("train", str(spec), "--out", str(tmp_path / "run"), "--nproc-per-node", "2", "--device", "cpu", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [r["epoch"] for r in records(tmp_path / "run")] == [1, 2]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["best.pt", "last.pt", "metrics.jsonl", "model.ts", "spec.yaml"]
    assert result.stdout.count("epoch 1/2") == 1, "rank 0 alone logs"
    ranks = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=True) for rank in (0, 1)]
    assert_identical(ranks[0]["weights"], ranks[1]["weights"])  # gradients averaged: one model in two processes
    assert_identical(ranks[0]["weights"], weights(tmp_path / "run" / "last.pt"))
    train_split = load_data(checked(section(SMALL)), torch.device("cpu")).train
    for epoch in (0, 1):
        first, second = (set(rank["epochs"][epoch]["order"].tolist()) for rank in ranks)
        assert first | second == set(range(len(train_split))), "together the ranks cover the training split"
        assert len(first & second) <= 1, "each rank its own half (one row repeated to even an odd count)"
        for rank in ranks:
            shard = rank["epochs"][epoch]
            assert torch.equal(shard["targets"], train_split.targets[shard["order"]]), "the batches held the rows given"
    assert not torch.equal(ranks[0]["epochs"][0]["order"], ranks[0]["epochs"][1]["order"]), "reshuffled each epoch"


def test_schedules_follow_their_curves(tmp_path, write_spec):
    """The learning rate at the end of each of 3 epochs, against each schedule's definition."""
    spec = write_spec(SMALL.replace("epochs: 2", "epochs: 3"))
    model = compiler.build(spec)
    base = 3.0e-3

    def rates(schedule: dict) -> list[float]:
        config = section(spec.read_text()) | {"schedule": schedule}
        return [record["lr"] for record in train(copy.deepcopy(model), config).history]

    assert rates({"type": "constant", "warmup_epochs": 0.5}) == pytest.approx([base] * 3)
    assert rates({"type": "step", "step_size": 1, "gamma": 0.5}) == pytest.approx([base / 2, base / 4, base / 8])
    cosine = rates({"type": "cosine", "min_lr": 1.0e-5, "warmup_epochs": 1})
    assert cosine[0] == pytest.approx(base) and cosine[2] == pytest.approx(1.0e-5) and 1.0e-5 < cosine[1] < base
    onecycle = rates({"type": "onecycle", "max_lr": 1.0e-2})  # warms up for 30 % of the steps, then anneals
    assert onecycle[0] > 5.0e-3 and onecycle[0] > onecycle[1] > onecycle[2] and onecycle[2] < 1.0e-2 / 25 / 10  # far below its start
    run = train(copy.deepcopy(model), section(spec.read_text()) | {"schedule": {"type": "plateau", "patience": 0, "factor": 0.5}})
    best = run.history[0]["val_loss"]
    for before, after in zip(run.history, run.history[1:]):
        improved = after["val_loss"] < best * (1 - 1e-4)  # ReduceLROnPlateau's default relative threshold
        assert after["lr"] == pytest.approx(before["lr"] * (1 if improved else 0.5))
        best = min(best, after["val_loss"])


@pytest.mark.parametrize("schedule", ["{type: cosine, warmup_epochs: 1}", "{type: onecycle, max_lr: 1.0e-2}", "{type: plateau}"])
def test_schedules_are_checkpointed_and_load_weights_only(tmp_path, write_spec, schedule):
    spec = write_spec(SMALL + f"  schedule: {schedule}\n")
    assert main(["train", str(spec), "--out", str(tmp_path)]) == 0
    state = load(tmp_path / "last.pt")
    assert state["scheduler"]["last_epoch" if "plateau" not in schedule else "num_bad_epochs"] is not None


@pytest.mark.parametrize(
    "optimizer",
    [
        {"type": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True},
        {"type": "rmsprop", "lr": 1.0e-3},
        {"type": "adagrad", "lr": 0.05},
    ],
)
def test_optimizers_train_under_bf16_autocast(tmp_path, write_spec, optimizer):
    """`amp: bf16` runs every forward (training and validation) under bfloat16 autocast on the CPU."""
    probe = Probe(compiler.build(write_spec(SMALL)))
    run = train(probe, section(SMALL) | {"optimizer": optimizer, "amp": "bf16", "epochs": 4})
    steps = probe.seen[1:]  # the first call is the setup's check that model and data fit
    assert {seen["autocast"] for seen in steps} == {torch.bfloat16}
    assert {seen["output"] for seen in steps} == {torch.bfloat16}
    assert {seen["training"] for seen in steps} == {True, False}
    assert run.history[-1]["val_loss"] < run.history[0]["train_loss"] * 0.5
    assert run.history[-1]["val_accuracy"] > 0.8


def test_runtime_train_takes_any_module():
    torch.manual_seed(0)  # the module is made before train() seeds: keep the test independent of the tests before it
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    run = train(model, {"epochs": 5, "data": {"dataset": "digits"}, "optimizer": {"type": "sgd", "lr": 0.1}})
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
