"""The GPU data path, checked on CPU (CUDA faked where it must be): uint8 images cross the
host-to-device copy and become float on the device with the same numbers; CPU-held validation data
and its batches are pinned; channels-last batches need no conversion per step; validation's
cross-entropy makes no float32 copy of the logits and gives torch's value; DDP's buffer broadcast and
bucket views, and Adam's fused kernel, are chosen as they should be."""

from __future__ import annotations

import contextlib

import pytest
import torch
from nncompile.runtime import batch, data, distributed, loop, splits, trainer
from nncompile.runtime import train as train_model
from nncompile.runtime.config import checked
from nncompile.runtime.optim import ClassesLast, fused, loss_function, optimizer
from nncompile.runtime.transforms import pipeline, stages
from test_train import SMALL, section
from test_train_gpu_paths import tmp_path_spec
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.nn import functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torchvision.transforms import v2

from nncompile import compiler

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
STEPS = [
    {"op": "random_crop", "size": 12, "padding": 2},
    {"op": "random_horizontal_flip"},
    {"op": "normalize", "mean": [0.4, 0.5, 0.6], "std": [0.2, 0.3, 0.25]},
]


class _Cifar:
    """A torchvision-style dataset of uint8 HWC images (as CIFAR's `data`)."""

    data = torch.randint(0, 256, (40, 16, 16, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)).numpy()
    targets = tuple(index % 4 for index in range(40))


def cifar_like(monkeypatch, steps: list = STEPS) -> dict:
    """A train section over uint8 images read as CIFAR's are, augmented by `steps`."""
    images = data._images(_Cifar())
    source = data._Source(train=images, test=images, has_test=True, num_classes=4, uint8_images=True)
    monkeypatch.setattr(data, "_read", lambda settings: source)
    config = section(SMALL) | {"transforms": {"train": steps}, "batch_size": 8}
    config["data"] = {"dataset": "cifar10", "root": "unused", "workers": 0}
    return checked(config)


def crossing(monkeypatch) -> list[batch.Value]:
    """What each `batch.to` is given: the tensors that cross the copy (returned as they are)."""
    seen = []
    monkeypatch.setattr(batch, "to", lambda value, device: seen.append(value) or value)
    return seen


# -- uint8 across the copy ---------------------------------------------------------------------------


def test_augmented_uint8_images_cross_the_copy_as_uint8_with_the_same_batches(monkeypatch):
    train = data.load(cifar_like(monkeypatch), CPU).train
    assert train.finish is not None and [type(step) for step in train.finish.steps] == [v2.ToDtype, v2.Normalize]
    order = torch.randperm(40, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(5)
    got = list(loop.batches(train, order, 8, 0, CPU, 0))
    dataset = train.dataset
    before = splits.Split(dataset=splits.TransformedTensors(dataset.inputs, dataset.targets, pipeline(STEPS, from_uint8=True)))
    torch.manual_seed(5)
    expected = list(loop.batches(before, order, 8, 0, CPU, 0))  # every step per sample, as before
    assert all(torch.equal(inputs, wanted) for (inputs, _), (wanted, _) in zip(got, expected, strict=True))
    assert all(inputs.dtype == torch.float32 for inputs, _ in got)
    seen = crossing(monkeypatch)
    list(loop.batches(train, order, 8, 0, CPU, 0))
    assert [value.dtype for value in seen[::2]] == [torch.uint8] * 5  # inputs: a quarter of float32's bytes


def test_a_datasets_samples_one_at_a_time_are_still_finished(monkeypatch):
    """Whoever reads samples (the fit checks, model.ts's examples, the Lightning adapter) gets floats."""
    train = data.load(cifar_like(monkeypatch), CPU).train
    torch.manual_seed(0)
    sample, _ = train.dataset[3]
    torch.manual_seed(0)
    staged, _ = train.staged[3]
    assert staged.dtype == torch.uint8 and torch.equal(sample, train.finish(staged[None])[0])


def test_pil_images_cross_the_copy_as_uint8(tmp_path, monkeypatch):
    config = section(SMALL) | {"transforms": {"train": STEPS[1:], "val": STEPS[2:]}, "batch_size": 8}
    config["data"] = {"dataset": "fake", "size": 24, "image_size": [3, 16, 16], "num_classes": 3, "workers": 0}
    loaded = data.load(checked(config), CPU)
    for split in (loaded.train, loaded.val):
        order = torch.arange(len(split))
        torch.manual_seed(2)
        got = [inputs for inputs, _ in loop.batches(split, order, 8, 0, CPU, 0)]
        torch.manual_seed(2)
        expected = [inputs for inputs, _ in loop.batches(splits.Split(dataset=split.dataset), order, 8, 0, CPU, 0)]
        assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))
        assert split.staged[0][0].dtype == torch.uint8


def test_steps_that_need_one_image_stay_per_sample():
    jitter = stages([{"op": "random_crop", "size": 8}, {"op": "color_jitter", "brightness": 0.2}], from_uint8=True)
    assert jitter.batch is None  # color_jitter is random per image, and runs on floats: floats cross
    resize = stages([{"op": "normalize", "mean": [0.5], "std": [0.5]}, {"op": "resize", "size": 8}], from_uint8=True)
    assert resize.batch is None  # a resize after the normalization: the batch's images differ in size before it
    late = stages([{"op": "normalize", "mean": [0.5], "std": [0.5]}])
    assert [type(step) for step in late.batch.steps] == [v2.Normalize] and [type(t) for t in late.sample.transforms] == [v2.Identity]


def test_normalize_on_the_gpu_copies_its_constants_once():
    """v2.Normalize copies its mean and std to the device on every call: a blocking copy, which waits
    for the GPU. The per-batch steps copy them once."""

    class Copies(TorchDispatchMode):
        count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func is torch.ops.aten._to_copy.default and args[0].device.type == "cpu" and kwargs.get("device", CPU).type == "cuda":
                Copies.count += 1
            return func(*args, **kwargs)

    steps = stages(STEPS, from_uint8=True).batch
    with FakeTensorMode():
        images = torch.empty(8, 3, 12, 12, dtype=torch.uint8, device="cuda")
        steps(images)
        with Copies():
            steps(images)
            ours = Copies.count
            v2.Normalize(**{k: v for k, v in STEPS[2].items() if k != "op"})(images.float())
    assert ours == 0 and Copies.count == 2


# -- pinned memory ----------------------------------------------------------------------------------


@pytest.fixture
def fake_pinning(monkeypatch) -> set[int]:
    """`pin_memory` and `is_pinned` as on a CUDA machine: pinning copies into storage that is then
    pinned (its views too). Returns the pinned storages' addresses."""
    pinned: set[int] = set()

    def pin(self: torch.Tensor) -> torch.Tensor:
        copy = self.clone(memory_format=torch.preserve_format)
        pinned.add(copy.untyped_storage().data_ptr())
        return copy

    monkeypatch.setattr(torch.Tensor, "pin_memory", pin)
    monkeypatch.setattr(torch.Tensor, "is_pinned", lambda self: self.untyped_storage().data_ptr() in pinned)
    return pinned


def test_validation_data_of_augmented_runs_is_pinned_for_a_gpu(monkeypatch, fake_pinning):
    config = cifar_like(monkeypatch)
    val = data.load(config, CUDA).val
    assert val.inputs.device == CPU and val.inputs.is_pinned() and val.targets.is_pinned()
    assert not data.load(config, CPU).val.inputs.is_pinned()  # no GPU: nothing to pin
    splits.use_channels_last(val)
    assert val.inputs.is_pinned() and val.inputs.is_contiguous(memory_format=torch.channels_last)


def test_every_batch_crosses_from_pinned_memory(monkeypatch, fake_pinning):
    val = data.load(cifar_like(monkeypatch), CUDA).val
    seen = crossing(monkeypatch)
    list(loop.batches(val, torch.arange(40), 16, 0, CUDA, 0))  # one process: consecutive rows
    assert all(value.is_pinned() for value in seen)
    assert {value.untyped_storage().data_ptr() for value in seen[::2]} == {val.inputs.untyped_storage().data_ptr()}  # views: no copy
    seen.clear()
    list(loop.batches(val, torch.arange(1, 40, 2), 16, 0, CUDA, 0))  # rank 1 of 2: every other row, gathered
    assert len(seen) == 4 and all(value.is_pinned() for value in seen)
    assert torch.equal(seen[0], val.inputs[1:32:2])


def test_dataloaders_pin_their_batches_for_a_gpu(monkeypatch, fake_pinning):
    made = []

    class Recorded(torch.utils.data.DataLoader):
        def __init__(self, *args, **kwargs):
            made.append(kwargs["pin_memory"])
            super().__init__(*args, **{**kwargs, "pin_memory": False})

    monkeypatch.setattr(loop, "DataLoader", Recorded)
    crossing(monkeypatch)
    train = data.load(cifar_like(monkeypatch), CUDA).train
    next(loop.batches(train, torch.arange(40), 8, 0, CUDA, 0))
    assert made == [True]


# -- channels_last, once ----------------------------------------------------------------------------


class Conversions(TorchDispatchMode):
    """Counts layout conversions: ops that copy a `[B, C, H, W]` tensor laid out contiguously into a
    new channels-last one (a view that reads the same memory otherwise is no conversion)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        tensors = [a for a in args if isinstance(a, torch.Tensor) and a.dim() == 4]
        if isinstance(result, torch.Tensor) and result.dim() == 4 and _laid_out_last(result):
            new = result.untyped_storage().data_ptr() not in {t.untyped_storage().data_ptr() for t in tensors}
            self.count += new and any(t.is_contiguous() and not _laid_out_last(t) for t in tensors)
        return result


def _laid_out_last(tensor: torch.Tensor) -> bool:
    return tensor.is_contiguous(memory_format=torch.channels_last) and not tensor.is_contiguous()


def _conv(size: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * (size - 2) ** 2, 4)).to(memory_format=torch.channels_last)


@pytest.mark.parametrize("augmented", [True, False])
def test_channels_last_batches_need_no_conversion_per_step(monkeypatch, augmented):
    config = cifar_like(monkeypatch, STEPS if augmented else STEPS[2:])
    loaded = data.load(config, CPU)
    assert (loaded.train.inputs is None) is augmented  # a DataLoader's batches, or resident ones
    model, loss = _conv(12 if augmented else 16), nn.CrossEntropyLoss()

    def conversions(split: splits.Split) -> int:
        with Conversions() as counted:
            for inputs, targets in loop.batches(split, torch.arange(40), 8, 0, CPU, 0):
                loop.batch_loss(model, loss, inputs, targets, None, channels_last=True).backward()
        return counted.count

    assert conversions(loaded.train) == 5  # as the loop was: a conversion at every step
    splits.use_channels_last(loaded.train, loaded.val)
    assert conversions(loaded.train) == 0
    inputs, _ = next(loop.batches(loaded.train, torch.arange(40), 8, 0, CPU, 0))
    assert _laid_out_last(inputs)


def test_the_channels_last_collate_keeps_the_values():
    items = [(torch.randn(3, 5, 6), index) for index in range(4)]
    inputs, targets = batch.collate_channels_last(items)
    plain, labels = torch.utils.data.default_collate(items)
    assert _laid_out_last(inputs) and torch.equal(inputs, plain) and torch.equal(targets, labels)
    tokens = [(torch.arange(5), 0), (torch.arange(5), 1)]
    assert torch.equal(batch.collate_channels_last(tokens)[0], torch.utils.data.default_collate(tokens)[0])


# -- validation's cross-entropy ---------------------------------------------------------------------


def _logits(dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 32, 512, generator=generator).to(dtype)
    labels = torch.randint(0, 512, (4, 32), generator=generator)
    labels[0, :5] = -100
    return logits, labels


@pytest.mark.parametrize(("kind", "options"), [("cross_entropy", {}), ("cross_entropy", {"label_smoothing": 0.1}), ("nll", {})])
def test_classes_last_losses_are_torchs(monkeypatch, kind, options):
    monkeypatch.setattr(ClassesLast, "CHUNK_BYTES", 4 * 512 * 7)  # chunks of 7 rows: 19 of them
    logits, labels = _logits()
    scores = logits.log_softmax(-1) if kind == "nll" else logits
    reference = F.cross_entropy if kind == "cross_entropy" else F.nll_loss
    expected = reference(scores.movedim(-1, 1), labels, **options)
    loss = loss_function({"loss": {"type": kind, **options}})
    with torch.no_grad():
        assert loss(scores, labels).item() == pytest.approx(expected.item(), rel=1e-6)  # chunked
    leaf = scores.clone().requires_grad_()
    value = loss(leaf, labels)  # with autograd: torch's one call, on [B*T, V]
    value.backward()
    check = scores.clone().requires_grad_()
    reference(check.movedim(-1, 1), labels, **options).backward()
    assert value.item() == pytest.approx(expected.item(), rel=1e-6) and torch.allclose(leaf.grad, check.grad, atol=1e-8)
    with torch.no_grad():
        assert loss(scores, torch.full_like(labels, -100)).isnan()  # nothing scored: NaN, as torch's mean


class _Fixed(nn.Module):
    """A model whose output is given (so that only the loss and the tally run)."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = logits

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.logits


class Temporaries(TorchDispatchMode):
    """The largest tensor any op allocates (views of its inputs are not counted)."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        given = {a.untyped_storage().data_ptr() for a in args if isinstance(a, torch.Tensor)}
        for out in result if isinstance(result, (tuple, list)) else [result]:
            if isinstance(out, torch.Tensor) and out.untyped_storage().data_ptr() not in given:
                self.largest = max(self.largest, out.untyped_storage().nbytes())
        return result


def test_next_token_validation_makes_no_float32_copy_of_the_logits(monkeypatch):
    monkeypatch.setattr(ClassesLast, "CHUNK_BYTES", 2**16)
    logits, labels = _logits(torch.bfloat16)  # 128 KiB of bf16 logits: 256 KiB as float32
    loss, tally = loss_function({"loss": "cross_entropy"}), loop.Tally(CPU, 512, sequence=True)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16)
    with torch.no_grad(), autocast, Temporaries() as ours:
        loop.evaluate_batch(_Fixed(logits), loss, torch.zeros(4, 1), labels, tally)
    with torch.no_grad(), autocast, Temporaries() as torchs:
        expected = F.cross_entropy(logits.reshape(-1, 512), labels.reshape(-1))
    assert ours.largest <= 2**16 < 4 * logits.numel() <= torchs.largest  # torch's: the float32 copy
    kept = labels != -100
    assert tally.result("val")["val_loss"] == pytest.approx(expected.item(), rel=1e-6)
    assert tally.sums[1].item() == ((logits.float().argmax(-1) == labels) & kept).sum().item()


# -- DDP and the fused optimizer --------------------------------------------------------------------


class _Counter(nn.Module):
    """A hand-written module that writes its buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("seen", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen += 1
        return x


def test_buffers_are_broadcast_only_where_they_change():
    from nncompile.compiler.nn import ShiftedWindowAttention

    batchnorm = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    assert loop.changing_buffers(batchnorm)  # each process's running statistics: rank 0's are broadcast
    assert not loop.changing_buffers(nn.SyncBatchNorm.convert_sync_batchnorm(batchnorm))  # the same on every process
    assert not loop.changing_buffers(nn.Sequential(nn.Linear(3, 3), nn.LayerNorm(3)))  # no buffers
    assert not loop.changing_buffers(ShiftedWindowAttention(8, [2, 2], [1, 1], 2))  # a constant index table
    assert loop.changing_buffers(nn.InstanceNorm2d(3, track_running_stats=True))
    assert not loop.changing_buffers(nn.InstanceNorm2d(3))
    assert loop.changing_buffers(nn.Sequential(nn.Linear(3, 3), _Counter()))  # unknown: broadcast, as torch does
    assert loop.ddp_options(nn.Linear(2, 2)) == {"broadcast_buffers": False, "gradient_as_bucket_view": True}


def test_the_trainer_hands_ddp_its_options(monkeypatch, tmp_path):
    given = []

    class Recorded(nn.Module):
        def __init__(self, module: nn.Module, **kwargs):
            super().__init__()
            self.module = module
            given.append(kwargs)

        def forward(self, inputs: torch.Tensor) -> torch.Tensor:
            return self.module(inputs)

        def no_sync(self) -> contextlib.AbstractContextManager:
            return contextlib.nullcontext()

    monkeypatch.setattr(distributed, "setup", lambda device: (0, 2, False))
    monkeypatch.setattr(trainer.nn.parallel, "DistributedDataParallel", Recorded)
    train_model(compiler.build(tmp_path_spec(tmp_path)), section(SMALL) | {"epochs": 1})
    assert given == [{"device_ids": None, "find_unused_parameters": False, "broadcast_buffers": False, "gradient_as_bucket_view": True}]


def test_adam_takes_the_fused_kernel_on_cuda():
    with FakeTensorMode():
        model = nn.Sequential(nn.Linear(4, 8, device="cuda"), nn.Linear(8, 2, device="cuda"))
        for kind in ("adam", "adamw"):
            assert optimizer(model, {"type": kind, "lr": 1e-3}).defaults["fused"] is True
        assert not optimizer(model, {"type": "sgd", "lr": 1e-3}).defaults.get("fused")
        assert not fused("adamw", [*model.parameters(), torch.zeros(2, device="cpu")])  # one off the GPU
        assert not fused("adamw", [torch.zeros(2, dtype=torch.long, device="cuda")])
    assert optimizer(nn.Linear(4, 2), {"type": "adamw", "lr": 1e-3}).defaults["fused"] is None  # CPU: torch's default
