"""The inner loops: batches of a split, one batch's loss and one batch's evaluation (the Lightning adapter
runs these too), one training epoch, one evaluation, and their tallies."""

from __future__ import annotations

import contextlib
import math
import signal
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase
from torch.utils.data import DataLoader

from . import batch
from .config import label_losses, per_output
from .data import Data
from .distributed import all_sum, any_rank
from .metrics import scored_classes, scored_outputs
from .progress import Progress
from .splits import Split


@dataclass
class Position:
    """Where training stands: completed epochs, batches done in the current epoch, optimizer steps."""

    epoch: int = 0
    batch: int = 0
    step: int = 0


@dataclass
class Step:
    """Everything one optimizer step needs."""

    model: nn.Module
    loss: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    autocast: Callable[[], contextlib.AbstractContextManager]
    accumulate: int
    clip: float | None
    channels_last: bool
    stepwise_schedule: bool
    inputs: list[str] | None = None
    """The model's input names, in order, for batches of named inputs."""
    no_sync: Callable[[], contextlib.AbstractContextManager] | None = None
    """DDP's `no_sync` (None alone): batches that only accumulate gradients skip the all-reduce."""


def ddp_options(model: nn.Module) -> dict[str, bool]:
    """DistributedDataParallel's settings for `model`, beside `find_unused_parameters`: gradients are
    views of the all-reduce buckets (no second copy of every gradient, none copied in and out), and
    rank 0's buffers are broadcast before every forward only where a buffer changes as it trains."""
    return {"broadcast_buffers": changing_buffers(model), "gradient_as_bucket_view": True}


def changing_buffers(model: nn.Module) -> bool:
    """Whether a buffer may change in training, and so differ from process to process unless rank 0's
    are broadcast before every forward: the running statistics of batch and instance norm (each process
    computes them from its own batches; broadcast, every process evaluates and saves rank 0's, as
    torch's default does), and any buffer of a module that is neither torch.nn's nor nncompile's (a
    plugin or hand-written module may write its buffers). SyncBatchNorm's statistics are computed over
    all processes, the same everywhere; buffers nothing writes (masks, position indices) were made
    equal when DDP wrapped the model."""
    for module in model.modules():
        if not any(True for _ in module.buffers(recurse=False)) or isinstance(module, nn.SyncBatchNorm):
            continue
        if isinstance(module, _NormBase) or not type(module).__module__.startswith(("torch.nn.", "nncompile.")):
            return True
    return False


class _Order(torch.utils.data.Sampler):
    """The indices a DataLoader reads, replaced before each pass (so its workers can persist)."""

    def __init__(self) -> None:
        self.indices: list[int] = []

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def batches(
    split: Split,
    order: torch.Tensor,
    size: int,
    start: int,
    device: torch.device,
    workers: int,
    loaders: dict[int, tuple[DataLoader, _Order]] | None = None,
) -> Iterator[tuple[batch.Value, batch.Value]]:
    """The batches of `split` in `order`, from batch number `start`, on `device`. A split read
    through a DataLoader keeps it, and its worker processes, in `loaders` from one epoch to the next."""
    order = order[start * size :]
    if split.inputs is not None:
        yield from _tensor_batches(split, order, size, device)
        return
    loaders = {} if loaders is None else loaders
    if id(split) not in loaders:
        sampler = _Order()
        loader = DataLoader(
            split.staged if split.staged is not None else split.dataset,
            batch_size=size,
            sampler=sampler,
            num_workers=workers,
            collate_fn=batch.collate_channels_last if split.channels_last else None,
            pin_memory=device.type == "cuda",
            worker_init_fn=_ignore_interrupts if workers else None,
            persistent_workers=workers > 0,
        )
        loaders[id(split)] = (loader, sampler)
    loader, sampler = loaders[id(split)]
    sampler.indices = order.tolist()
    for inputs, targets in loader:
        inputs = batch.to(inputs, device)  # uint8 images stay uint8 across the copy: `finish` makes them float
        yield (split.finish(inputs) if split.finish is not None else inputs), batch.to(targets, device)


def _tensor_batches(split: Split, order: torch.Tensor, size: int, device: torch.device) -> Iterator[tuple[batch.Value, batch.Value]]:
    """Slices of resident tensors; from the CPU to a GPU, out of page-locked memory (an asynchronous copy)."""
    where = next(iter(split.inputs.values())).device if isinstance(split.inputs, dict) else split.inputs.device
    rows = batch.pinned_rows if where.type == "cpu" and device.type == "cuda" else batch.take
    for chunk in order.to(where).split(size):
        yield batch.to(rows(split.inputs, chunk), device), batch.to(rows(split.targets, chunk), device)


def _ignore_interrupts(_worker: int) -> None:
    """Ctrl-C is the main process's to handle: it finishes the step and saves."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Tally:
    """Sums of loss, correct top-1 and top-5 predictions and scored labels, kept on the device (no sync
    per batch). Labels may be one per sample (`[B]` against `[B, C]` scores) or one per position
    (`[B, T]` against `[B, T, C]`, or `[B, H, W]` against `[B, C, H, W]`); `ignore_index` labels are not
    scored. With `sequence`, the loss is a per-token cross-entropy and its exponential, the perplexity,
    is reported too."""

    def __init__(self, device: torch.device, classes: int | None, sequence: bool = False, ignore_index: int = -100):
        self.sums = torch.zeros(4, dtype=tally_dtype(device), device=device)
        self.classes, self.sequence, self.ignore_index = classes, sequence, ignore_index

    def add_loss(self, loss: torch.Tensor, count: int | torch.Tensor) -> None:
        self.sums[0] += loss.detach() * count
        self.sums[3] += count

    def add(self, loss: torch.Tensor, output: torch.Tensor, target: torch.Tensor) -> None:
        if not self.classes:
            self.add_loss(loss, len(target))
            return
        scores, labels = flat_labels(output, target)  # in the output's dtype: no float32 copy of every score
        kept = labels != self.ignore_index
        scored = kept.sum()  # the loss is a mean over the scored labels too (NaN where there is none)
        self.add_loss(torch.where(scored > 0, loss, 0.0), scored)
        self.sums[1] += correct(scores, labels, kept)
        if self.classes > 5:
            self.sums[2] += ((scores.topk(5, dim=-1).indices == labels[:, None]).any(-1) & kept).sum()

    def result(self, prefix: str) -> dict[str, float | None]:
        loss, correct, top5, count = all_sum(self.sums.clone()).tolist()
        count = max(count, 1)
        values = {f"{prefix}_loss": loss / count}
        if self.classes:
            values[f"{prefix}_accuracy"] = correct / count
            if self.classes > 5:
                values[f"{prefix}_top5"] = top5 / count
        if self.sequence:
            values[f"{prefix}_perplexity"] = math.exp(min(loss / count, 700.0))
        return values


class Tallies:
    """A tally per named output (its loss; accuracy where its targets are labels) beside the total of
    the weighted losses: `val_loss`, `val_logits_loss`, `val_logits_accuracy`, `val_box_loss`…"""

    def __init__(self, device: torch.device, loss_fn: Any, parts: dict[str, Tally]):
        self.total, self.loss_fn, self.parts = Tally(device, None), loss_fn, parts

    def add_loss(self, loss: torch.Tensor, count: int) -> None:
        self.total.add_loss(loss, count)

    def add(self, loss: torch.Tensor, output: Any, target: dict[str, torch.Tensor]) -> None:
        self.total.add_loss(loss, batch.length(target))
        outputs = output if isinstance(output, (tuple, list)) else (output,)
        for name, value in zip(self.loss_fn.names, outputs):
            if name in self.parts:
                self.parts[name].add(self.loss_fn.last[name], value, target[name])

    def result(self, prefix: str) -> dict[str, float | None]:
        values = self.total.result(prefix)
        for name, part in self.parts.items():
            values.update(part.result(f"{prefix}_{name}"))
        return values


def correct(scores: torch.Tensor, labels: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """How many of the `kept` labels (not `ignore_index`) are the top-scored class: scores `[N, C]`
    and labels `[N]`, as `flat_labels` gives them."""
    return ((scores.argmax(-1) == labels) & kept).sum()


def tally_dtype(device: torch.device) -> torch.dtype:
    """float64 sums (exact counts past 2**24 samples), float32 on MPS, which has no float64."""
    return torch.float32 if device.type == "mps" else torch.float64


def flat_labels(output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores as `[N, C]` and labels as `[N]`, whichever dim holds the classes."""
    if output.dim() == 2:
        return output, target
    if output.shape[:-1] != target.shape:
        output = output.movedim(1, -1)
    return output.reshape(-1, output.shape[-1]), target.reshape(-1)


def train_epoch(
    step: Step, source: Iterator, position: Position, total: int, tally: Tally, stop: StopFlag, progress: Progress, epochs: int
) -> bool:
    """Run the rest of one epoch from `position.batch`; returns False if a stop was requested (the
    position is then at the last completed optimizer step)."""
    step.model.train()
    for index, (inputs, targets) in enumerate(source, start=position.batch):
        final = (index + 1) % step.accumulate == 0 or index + 1 == total
        with contextlib.nullcontext() if final or step.no_sync is None else step.no_sync():
            with step.autocast():
                loss = batch_loss(step.model, step.loss, inputs, targets, step.inputs, step.channels_last)
            step.scaler.scale(loss / step.accumulate if step.accumulate > 1 else loss).backward()
        tally.add_loss(loss, batch.length(targets))
        if final:
            _optimizer_step(step)
            position.step += 1
            position.batch = index + 1
            if stop.check(final=index + 1 == total):
                return False
        if progress.wants_loss() or index + 1 == total:
            progress.update(position.epoch + 1, epochs, index + 1, total, loss.item())
    return True


def _optimizer_step(step: Step) -> None:
    if step.clip is not None:
        step.scaler.unscale_(step.optimizer)
        nn.utils.clip_grad_norm_([p for g in step.optimizer.param_groups for p in g["params"]], step.clip)
    step.scaler.step(step.optimizer)
    step.scaler.update()
    step.optimizer.zero_grad(set_to_none=True)
    if step.stepwise_schedule:
        step.scheduler.step()


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loss_fn: nn.Module,
    source: Iterator,
    tally: Tally | Tallies,
    autocast: Callable,
    channels_last: bool,
    pad_to: int | None = None,
    order: list[str] | None = None,
) -> dict[str, float | None]:
    """The validation metrics. `pad_to`: a shorter last batch is padded to this size (copies of its
    last sample, whose outputs are dropped), so that a compiled model is not compiled again for it."""
    model.eval()
    for inputs, targets in source:
        with autocast():
            evaluate_batch(model, loss_fn, inputs, targets, tally, order, channels_last, pad_to)
    return tally.result("val")


def batch_loss(
    model: nn.Module, loss_fn: nn.Module, inputs: Any, targets: Any, order: list[str] | None = None, channels_last: bool = False
) -> torch.Tensor:
    """One training batch's loss (`order`: the model's input names, for inputs by name)."""
    return loss_fn(batch.run(model, batch.channels_last(inputs, channels_last), order), targets)


def evaluate_batch(
    model: nn.Module,
    loss_fn: nn.Module,
    inputs: Any,
    targets: Any,
    tally: Tally | Tallies,
    order: list[str] | None = None,
    channels_last: bool = False,
    pad_to: int | None = None,
) -> None:
    """One validation batch's loss and scores into `tally` (padded to `pad_to` as `evaluate` says)."""
    count = batch.length(inputs)
    if pad_to is not None and count < pad_to:
        inputs = batch.pad(inputs, pad_to)
    output = batch.run(model, batch.channels_last(inputs, channels_last), order)
    output = tuple(o[:count] for o in output) if isinstance(output, (tuple, list)) else output[:count]
    tally.add(loss_fn(output, targets), output, targets)


def validation_tally(config: Mapping[str, Any], data: Data, device: torch.device, loss_fn: nn.Module) -> Tally | Tallies:
    """What validation measures: the loss, accuracy for labels (not counting each loss's
    `ignore_index`), perplexity for tokens; with a loss per output, each output's too."""
    ignored = label_losses(config)
    if not per_output(config):
        return Tally(device, scored_classes(data, config), data.sequence, ignored.get(None, -100))
    parts = {}
    for name, classes in scored_outputs(data, config).items():
        parts[name] = Tally(device, classes, False, ignored.get(name, -100))
    return Tallies(device, loss_fn, parts)


def batch_count(samples: int, size: int) -> int:
    return math.ceil(samples / size)


class StopFlag:
    """Ctrl-C (SIGINT) or SIGTERM asks the loop to stop after the current optimizer step; a second
    Ctrl-C interrupts at once. Every process agrees on the step at which it stops: alone, the flag is
    read locally (no device sync); with several processes, they compare flags (a collective and a
    sync) only every `every` steps and at the end of each epoch, not after every step."""

    def __init__(self, device: torch.device, world: int = 1, every: int = 50):
        self.device, self.world, self.every = device, world, every
        self.requested = False
        self.steps = 0
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        with contextlib.suppress(ValueError):  # not the main thread: leave the handlers alone
            for number in (signal.SIGINT, signal.SIGTERM):
                self.previous[number] = signal.signal(number, self._request)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)

    def _request(self, number: int, frame: Any) -> None:
        if self.requested and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def check(self, final: bool = False) -> bool:
        """After an optimizer step (`final`: the epoch's last): whether to stop now."""
        self.steps += 1
        if self.world > 1 and (final or self.steps % self.every == 0):
            self.requested = any_rank(self.requested, self.device)
            return self.requested
        return self.requested and self.world == 1
