"""The GPU paths, checked on CPU: the autocast dtype chosen per device capability, no collective or
sync per step for stop requests, process groups and global backend flags left as found, uint8 images
until the first float transform, DataLoaders kept across epochs, torch.compile for training and
evaluation with one batch size, throughput without validation, model.ts without a GPU copy, the
progress bar's rate and time left."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import time
from pathlib import Path

import pytest
import torch
from nncompile.runtime import device, distributed, loop, trainer
from nncompile.runtime import train as train_model
from nncompile.runtime.config import checked
from nncompile.runtime.data import _images, load
from nncompile.runtime.loop import StopFlag, Tally, evaluate, tally_dtype
from nncompile.runtime.progress import Progress
from nncompile.runtime.transforms import pipeline
from test_train import SMALL, section
from torchvision.transforms import v2

from nncompile import compiler

CUDA = torch.device("cuda")


@pytest.mark.parametrize(("native", "emulated", "expected"), [(True, True, torch.bfloat16), (False, True, torch.float16)])
def test_auto_precision_never_picks_emulated_bf16(monkeypatch, native: bool, emulated: bool, expected):
    def supported(including_emulation: bool = True) -> bool:
        return native or (including_emulation and emulated)

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", supported)
    assert device.precision("auto", CUDA) is expected  # a V100 or T4 emulates bf16: fp16 with a scaler instead
    assert device.precision("auto", torch.device("cpu")) is None
    assert device.precision("bf16", CUDA) is torch.bfloat16


def test_stop_requests_need_no_collective_per_step(monkeypatch):
    calls = []
    monkeypatch.setattr(loop, "any_rank", lambda flag, device: calls.append(flag) or flag)
    alone = StopFlag(torch.device("cpu"), world=1)
    assert not any(alone.check() for _ in range(200)) and calls == []
    alone.requested = True
    assert alone.check() and calls == []  # alone, a request is seen at the next step, without a sync
    several = StopFlag(torch.device("cpu"), world=4, every=50)
    results = [several.check(final=step == 119) for step in range(120)]
    assert len(calls) == 3 and not any(results)  # after steps 50, 100 and the epoch's last
    several.requested = True
    results = [several.check() for _ in range(30)]  # steps 121 to 150: the flags are compared at 150
    assert results == [False] * 29 + [True] and len(calls) == 4


def test_a_process_group_the_caller_made_is_left_alone(monkeypatch):
    destroyed = []
    monkeypatch.setattr(distributed, "is_launched", lambda: True)
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(distributed.dist, "get_rank", lambda: 1)
    monkeypatch.setattr(distributed.dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(distributed.dist, "destroy_process_group", lambda: destroyed.append(True))
    rank, world, created = distributed.setup(torch.device("cpu"))
    assert (rank, world, created) == (1, 2, False)
    distributed.teardown(created)
    assert destroyed == []


def test_backend_flags_are_restored_after_a_cuda_run():
    benchmark, matmul = torch.backends.cudnn.benchmark, torch.get_float32_matmul_precision()
    with trainer._fast_kernels(CUDA):
        assert torch.backends.cudnn.benchmark and torch.get_float32_matmul_precision() == "high"
    assert (torch.backends.cudnn.benchmark, torch.get_float32_matmul_precision()) == (benchmark, matmul)


def test_images_stay_uint8_until_a_step_needs_floats():
    class Dataset:
        data = torch.randint(0, 256, (4, 32, 32, 3), dtype=torch.uint8).numpy()
        targets = (0, 1, 2, 3)

    images, _ = _images(Dataset())
    assert images.dtype == torch.uint8 and images.shape == (4, 3, 32, 32)
    steps = [
        {"op": "random_crop", "size": 24, "padding": 2},
        {"op": "random_horizontal_flip"},
        {"op": "normalize", "mean": [0.5] * 3, "std": [0.2] * 3},
    ]
    kinds = [type(t) for t in pipeline(steps, from_uint8=True).transforms]
    assert kinds == [v2.RandomCrop, v2.RandomHorizontalFlip, v2.ToDtype, v2.Normalize]
    torch.manual_seed(0)
    late = pipeline(steps, from_uint8=True)(images[0])
    torch.manual_seed(0)
    early = pipeline(steps)(images[0].float() / 255)
    assert late.dtype == torch.float32 and torch.allclose(late, early, atol=1e-6)  # same numbers, a quarter of the bytes moved
    assert pipeline([], from_uint8=True)(images[0]).dtype == torch.float32


def test_dataloaders_and_their_workers_last_the_whole_run(monkeypatch, tmp_path):
    made = []

    class Counted(torch.utils.data.DataLoader):
        def __init__(self, *args, **kwargs):
            made.append(kwargs.get("persistent_workers"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(loop, "DataLoader", Counted)
    config = section(SMALL) | {"epochs": 3, "transforms": {"train": [{"op": "random_horizontal_flip"}]}}
    config["data"] = {**config["data"], "workers": 1}
    run = train_model(compiler.build(tmp_path_spec(tmp_path)), config)
    assert len(run.history) == 3 and made == [True]  # one loader for three epochs, its worker kept


def tmp_path_spec(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    return path


def test_compile_covers_training_and_evaluation_at_one_batch_size(monkeypatch, tmp_path):
    compiled, shapes = [], []

    def fake_compile(module, mode="default"):
        compiled.append(mode)

        def run(inputs):
            shapes.append((module.training, inputs.shape[0]))
            return module(inputs)

        wrapper = torch.nn.Module()
        wrapper.forward = run
        wrapper.train = lambda mode=True: module.train(mode) and wrapper
        wrapper.eval = lambda: module.eval() and wrapper
        return wrapper

    monkeypatch.setattr(trainer.torch, "compile", fake_compile)
    config = section(SMALL) | {"epochs": 1, "batch_size": 100, "compile": {"mode": "max-autotune"}}
    train_model(compiler.build(tmp_path_spec(tmp_path)), config)
    assert compiled == ["max-autotune", "max-autotune"]  # the evaluated model and the training step
    assert shapes and {size for _, size in shapes} == {100}  # no second batch size: the last is dropped or padded


CXX = os.environ.get("CXX", "clang++" if sys.platform == "darwin" else "g++")
"""The C++ compiler torch.compile's CPU backend (inductor) builds its kernels with."""

MLP = """\
nncompile: 1
name: mlp
inputs: {x: [16]}
layers:
  - {id: fc1, op: linear, out: 32, activation: relu}
  - {id: fc2, op: linear, out: 4}
train:
  epochs: 2
  batch_size: 50
  data: {dataset: tensors, path: DATA, val_split: 0.2}
  optimizer: {type: sgd, lr: 0.1}
"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which(CXX) is None, reason=f"torch.compile's CPU backend builds C++ with {CXX}, which is not installed")
def test_compile_trains_for_real_on_the_cpu(tmp_path):
    """The inductor backend, not a stand-in: a compiled run makes graphs and learns what the eager run
    learns (250 samples, batches of 50: no short batch, so both runs see the same batches)."""
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(250, 16, generator=generator)
    torch.save({"inputs": inputs, "targets": inputs[:, :4].argmax(1)}, tmp_path / "data.pt")
    spec = tmp_path / "mlp.yaml"
    spec.write_text(MLP.replace("DATA", str(tmp_path / "data.pt")))

    def history(compile: bool) -> list[dict]:
        torch.manual_seed(0)
        return train_model(compiler.build(spec), section(spec.read_text()) | {"compile": compile}).history

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled = history(True)
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    eager = history(False)
    assert graphs >= 2, "the training step and the evaluated model are compiled"
    for ours, theirs in zip(compiled, eager, strict=True):
        for key in ("train_loss", "val_loss", "val_accuracy"):
            assert ours[key] == pytest.approx(theirs[key], rel=1e-4, abs=1e-6), key
    assert compiled[-1]["val_loss"] < compiled[0]["train_loss"]


def test_padding_the_last_batch_changes_no_metric():
    torch.manual_seed(0)
    model, loss = torch.nn.Linear(4, 3), torch.nn.CrossEntropyLoss()
    inputs, targets = torch.randn(10, 4), torch.randint(0, 3, (10,))

    def source():
        yield from zip(inputs.split(4), targets.split(4))

    plain = evaluate(model, loss, source(), Tally(torch.device("cpu"), 3), contextlib.nullcontext, False)
    padded = evaluate(model, loss, source(), Tally(torch.device("cpu"), 3), contextlib.nullcontext, False, 4)
    assert plain == padded


def test_throughput_counts_training_only(monkeypatch, tmp_path):
    """On a clock that ticks one second per reading, and 100 s of validation: the rate is the
    training samples over the training time alone (one tick), the epoch's time counts validation."""

    class Clock:
        now = 0.0

        @classmethod
        def perf_counter(cls) -> float:
            cls.now += 1.0
            return cls.now

    validate = trainer._Trainer._validate

    def slow(self):
        Clock.now += 100.0
        return validate(self)

    monkeypatch.setattr(trainer, "time", Clock)
    monkeypatch.setattr(trainer._Trainer, "_validate", slow)
    config = section(SMALL) | {"epochs": 1}
    record = train_model(compiler.build(tmp_path_spec(tmp_path)), config).history[0]
    samples = len(load(checked(config), torch.device("cpu")).train)
    assert record["seconds"] == 102.0  # started, training done, epoch done: two ticks and the validation
    assert record["samples_per_s"] == round(samples / 1.0, 1)  # counting validation would give samples / 102


def test_the_cpu_copy_for_model_ts_clones_no_tensor_on_its_device(monkeypatch):
    model = compiler.build(Path(__file__).resolve().parent.parent / "specs" / "mnist_mlp.yaml")

    def refuse(self, memo):
        raise AssertionError("a tensor was deep-copied on its device")

    monkeypatch.setattr(torch.Tensor, "__deepcopy__", refuse)
    copy = trainer.cpu_copy(model)
    assert all(torch.equal(a, b) for a, b in zip(copy.state_dict().values(), model.state_dict().values()))
    next(copy.parameters()).data.zero_()
    assert next(model.parameters()).abs().sum() > 0  # a copy, not the same storage


def test_tallies_on_mps_use_float32():
    assert tally_dtype(torch.device("mps")) is torch.float32 and tally_dtype(torch.device("cpu")) is torch.float64


def test_the_progress_bar_shows_rate_and_time_left(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream, clock = Terminal(), iter([100.0, 102.0])
    monkeypatch.setattr(time, "monotonic", lambda: next(clock))
    progress = Progress(stream=stream)
    progress.update(1, 3, 10, 110, 0.5)
    progress.update(1, 3, 30, 110, 0.4)  # 20 batches in 2 s: 10 it/s, 80 left: 0:08
    assert stream.getvalue().endswith("30/110 loss 0.4000 10.0 it/s, 0:08 left\x1b[K")


def test_each_process_draws_its_own_dropout_stream(monkeypatch, tmp_path):
    seeds = []

    class Seeded(Exception):
        pass

    def stop_after_seeding(*args, **kwargs):
        raise Seeded

    monkeypatch.setattr(distributed, "setup", lambda device: (3, 4, False))
    monkeypatch.setattr(trainer.torch, "manual_seed", seeds.append)
    monkeypatch.setattr(trainer, "load", stop_after_seeding)  # the data comes right after the seed
    with pytest.raises(Seeded):
        train_model(compiler.build(tmp_path_spec(tmp_path)), section(SMALL) | {"epochs": 1, "seed": 5})
    assert seeds == [5 + 3]  # rank 3 of 4: the seed plus its rank (DDP gives every rank rank 0's weights)
