"""The inner loops: batches of a split, one training epoch, one evaluation, and their tallies."""

from __future__ import annotations

import contextlib
import math
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from .data import Split
from .distributed import all_sum, any_rank
from .progress import Progress


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


def batches(
    split: Split, order: torch.Tensor, size: int, start: int, device: torch.device, workers: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The batches of `split` in `order`, from batch number `start`, on `device`."""
    order = order[start * size :]
    if split.inputs is not None:
        order = order.to(split.inputs.device)
        for chunk in order.split(size):
            yield split.inputs[chunk].to(device, non_blocking=True), split.targets[chunk].to(device, non_blocking=True)
        return
    loader = DataLoader(
        split.dataset,
        batch_size=size,
        sampler=order.tolist(),
        num_workers=workers,
        pin_memory=device.type == "cuda",
        worker_init_fn=_ignore_interrupts if workers else None,
    )
    for inputs, targets in loader:
        yield inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)


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
        dtype = torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64
        self.sums = torch.zeros(4, dtype=dtype, device=device)
        self.classes, self.sequence, self.ignore_index = classes, sequence, ignore_index

    def add_loss(self, loss: torch.Tensor, count: int | torch.Tensor) -> None:
        self.sums[0] += loss.detach() * count
        self.sums[3] += count

    def add(self, loss: torch.Tensor, output: torch.Tensor, target: torch.Tensor) -> None:
        if not self.classes:
            self.add_loss(loss, len(target))
            return
        scores, labels = _flat_labels(output, target)
        kept = labels != self.ignore_index
        self.add_loss(loss, kept.sum() if self.sequence or target.dim() > 1 else len(target))
        self.sums[1] += ((scores.argmax(-1) == labels) & kept).sum()
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


def _flat_labels(output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores as `[N, C]` and labels as `[N]`, whichever dim holds the classes."""
    if output.dim() == 2:
        return output, target
    if output.shape[:-1] != target.shape:
        output = output.movedim(1, -1)
    return output.reshape(-1, output.shape[-1]), target.reshape(-1)


def prepare(inputs: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return inputs.contiguous(memory_format=torch.channels_last) if channels_last and inputs.dim() == 4 else inputs


def train_epoch(
    step: Step, source: Iterator, position: Position, total: int, tally: Tally, stop: StopFlag, progress: Progress, epochs: int
) -> bool:
    """Run the rest of one epoch from `position.batch`; returns False if a stop was requested (the
    position is then at the last completed optimizer step)."""
    step.model.train()
    syncing = getattr(step.model, "no_sync", None)
    for index, (inputs, targets) in enumerate(source, start=position.batch):
        final = (index + 1) % step.accumulate == 0 or index + 1 == total
        with contextlib.nullcontext() if final or syncing is None else syncing():
            with step.autocast():
                loss = step.loss(step.model(prepare(inputs, step.channels_last)), targets)
            step.scaler.scale(loss / step.accumulate if step.accumulate > 1 else loss).backward()
        tally.add_loss(loss, len(targets))
        if final:
            _optimizer_step(step)
            position.step += 1
            position.batch = index + 1
            if stop.check():
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
    model: nn.Module, loss_fn: nn.Module, source: Iterator, tally: Tally, autocast: Callable, channels_last: bool
) -> dict[str, float | None]:
    model.eval()
    for inputs, targets in source:
        with autocast():
            output = model(prepare(inputs, channels_last))
            tally.add(loss_fn(output, targets), output.float(), targets)
    return tally.result("val")


def batch_count(samples: int, size: int) -> int:
    return math.ceil(samples / size)


class StopFlag:
    """Ctrl-C (SIGINT) or SIGTERM asks the loop to stop after the current optimizer step; a second
    Ctrl-C interrupts at once. Every process agrees on the step at which it stops."""

    def __init__(self, device: torch.device):
        self.device = device
        self.requested = False
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

    def check(self) -> bool:
        self.requested = any_rank(self.requested, self.device)
        return self.requested
