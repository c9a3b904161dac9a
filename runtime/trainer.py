"""`fit`: set up device, data, model, optimizer and schedule from a train section; run the epochs;
keep the run directory (metrics.jsonl, last.pt, best.pt, model.ts) and resume exactly."""

from __future__ import annotations

import contextlib
import copy
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from nncompile.compiler.files import append_line, write_atomic
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from . import batch, checkpoint, distributed
from .config import TrainError
from .data import Data, Split, default_workers, load
from .device import conv_model, pick_device, precision
from .fit_checks import check_fit, sequence_length
from .loop import Position, Step, StopFlag, Tally, batch_count, batches, ddp_options, evaluate, train_epoch, validation_tally
from .metrics import Monitor
from .optim import PER_EPOCH_SCHEDULES, freeze, loss_function, optimizer, scheduler
from .progress import Progress
from .splits import use_channels_last


@dataclass
class Run:
    """What a training run did."""

    history: list[dict[str, Any]]
    best: float | None
    best_epoch: int | None
    metric: str
    """The metric that picked best.pt."""
    stopped: str
    """'completed', 'early_stopping' or 'interrupted'."""
    out: Path | None
    notes: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    """The files of the run directory this run wrote (model.ts only if it completed)."""


def fit(
    model: nn.Module,
    config: Mapping[str, Any],
    out: Path | None = None,
    resume: str | Path | Mapping | None = None,
    ready: Callable[[], None] | None = None,
) -> Run:
    """Train `model` as `config` (a train section with defaults filled in) says; `resume` is a
    checkpoint's path or its loaded state (raises checkpoint.CheckpointError if it does not fit);
    `ready` is called once everything is set up and restored, before the first step."""
    device = distributed.local_device(pick_device(config["device"]))
    rank, world, joined = distributed.setup(device)
    try:
        with _fast_kernels(device):
            return _fit(model, config, out, resume, ready, device, rank, world)
    finally:
        distributed.teardown(joined)


@contextlib.contextmanager
def _fast_kernels(device: torch.device) -> Iterator[None]:
    """cuDNN autotuning and TF32 matrix products for the run, restored afterwards (they are global)."""
    if device.type != "cuda":
        yield
        return
    benchmark, matmul = torch.backends.cudnn.benchmark, torch.get_float32_matmul_precision()
    torch.backends.cudnn.benchmark = True
    torch.set_float32_matmul_precision("high")
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = benchmark
        torch.set_float32_matmul_precision(matmul)


def _fit(model: nn.Module, config, out, resume, ready, device: torch.device, rank: int, world: int) -> Run:
    progress = Progress(enabled=rank == 0)
    torch.manual_seed(config["seed"] + rank)  # each process its own dropout stream; DDP copies rank 0's weights
    data = load(config, device, sequence_length(model))
    notes = []
    if "init" in config and resume is None:
        notes += checkpoint.initialize(model, config["init"])
    if "freeze" in config:
        notes.append(f"froze {freeze(model, config['freeze'])} parameter tensors")
    channels_last = config["channels_last"] is True or (config["channels_last"] == "auto" and device.type == "cuda" and conv_model(model))
    model.to(device, memory_format=torch.channels_last) if channels_last else model.to(device)
    if channels_last:  # images change layout once: resident ones now, a DataLoader's as its workers stack them
        use_channels_last(data.train, data.val)
    batchnorms: dict[str, type[nn.Module]] = {}
    if config["sync_batchnorm"] and world > 1:
        if device.type != "cuda":
            raise TrainError(("sync_batchnorm",), "SyncBatchNorm runs on CUDA devices only", "drop it for CPU runs", "E0505")
        model, batchnorms = sync_batchnorm(model)
    loss_fn = loss_function(config, getattr(model, "nncompile_outputs", None)).to(device)
    check_fit(model, data, config, loss_fn, device)
    trainer = _Trainer(model, config, data, device, rank, world, loss_fn, channels_last, progress, out, batchnorms)
    for note in notes:
        progress.line(note)
    if resume is not None:
        trainer.restore(resume if isinstance(resume, Mapping) else checkpoint.load(resume))
    if ready is not None:
        ready()
    return trainer.run()


class _Trainer:
    def __init__(
        self, model, config, data: Data, device, rank, world, loss_fn, channels_last, progress: Progress, out: Path | None, batchnorms
    ):
        self.model, self.config, self.data, self.device = model, config, data, device
        self.batchnorms: dict[str, type[nn.Module]] = batchnorms
        """The BatchNorm classes that SyncBatchNorm replaced, by module name (for model.ts)."""
        self.rank, self.world, self.progress = rank, world, progress
        self.out = out if rank == 0 else None
        self.size = config["batch_size"]
        self.workers = 0 if data.train.inputs is not None and data.val.inputs is not None else _workers(config)
        self.sampler = torch.utils.data.DistributedSampler(data.train, num_replicas=world, rank=rank, shuffle=True, seed=config["seed"])
        compiling = config["compile"] is not False
        self.samples = _samples_per_epoch(len(self.sampler), self.size, compiling, _has_batchnorm(model))
        self.batches_per_epoch = batch_count(self.samples, self.size)
        optim = optimizer(model, config["optimizer"])
        self.steps_per_epoch = batch_count(self.batches_per_epoch, config["accumulate"])
        schedule = config.get("schedule")
        self.best = Monitor.of(config.get("checkpoint", {}), data, config)
        self.early = Monitor.of(config["early_stopping"], data, config, "early_stopping") if "early_stopping" in config else None
        dtype = precision(config["amp"], device)
        ids = [device.index] if device.type == "cuda" else None
        unused = distributed.unused_parameters(model)
        wrapped = model
        if world > 1:
            wrapped = nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=unused, **ddp_options(model))
        mode = config["compile"].get("mode", "default") if isinstance(config["compile"], dict) else "default"
        self.evaluated = torch.compile(model, mode=mode) if compiling else model
        self.step = Step(
            model=torch.compile(wrapped, mode=mode) if compiling else wrapped,
            loss=loss_fn,
            optimizer=optim,
            scheduler=scheduler(optim, schedule, self.steps_per_epoch, config["epochs"], self.best.mode),
            scaler=torch.amp.GradScaler(device.type, enabled=dtype == torch.float16),
            autocast=partial(torch.autocast, device.type, dtype=dtype, enabled=dtype is not None),
            accumulate=config["accumulate"],
            clip=config.get("clip_grad_norm"),
            channels_last=channels_last,
            stepwise_schedule=schedule is not None and schedule["type"] not in PER_EPOCH_SCHEDULES,
            inputs=batch.input_order(model),
            no_sync=wrapped.no_sync if world > 1 else None,
        )
        self.position = Position()
        self.history: list[dict[str, Any]] = []
        self.loaders: dict[int, Any] = {}
        """The DataLoaders of the splits read through one, kept (with their workers) across epochs."""

    # -- state ---------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.step.optimizer.state_dict(),
            "scheduler": self.step.scheduler.state_dict() if self.step.scheduler else None,
            "scaler": self.step.scaler.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
            "position": vars(self.position).copy(),
            "monitors": {"best": vars(self.best).copy(), "early": vars(self.early).copy() if self.early else None},
            "config": dict(self.config),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from a checkpoint; anything in it that does not fit this run is a CheckpointError."""
        try:
            self._restore(state)
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as error:
            first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
            raise checkpoint.CheckpointError(f"the checkpoint does not fit this model and run: {first}") from None

    def _restore(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.position = Position(**state["position"])
        if self.step.stepwise_schedule:  # laid out again before the optimizer's state (its lr) is loaded
            self.step.scheduler = self._schedule(self.position.step + self._steps_to_come())
        self.step.optimizer.load_state_dict(state["optimizer"])
        if self.step.scheduler is not None and state["scheduler"] is not None:
            # the schedule is laid out over this run's steps: keep that layout, take the progress
            laid_out = ("total_steps", "_schedule_phases")
            self.step.scheduler.load_state_dict({k: v for k, v in state["scheduler"].items() if k not in laid_out})
        self.step.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"])
        restore_cuda_rng(state["rng"]["cuda"])
        if self.rank:  # the checkpoint holds rank 0's generator: the others take streams of their own
            torch.manual_seed(self.config["seed"] + self.rank + 7919 * self.position.step)
        vars(self.best).update(state["monitors"]["best"])
        if self.early and state["monitors"]["early"]:
            vars(self.early).update(state["monitors"]["early"])

    def _schedule(self, total: int) -> Any:
        schedule = self.config["schedule"]
        return scheduler(self.step.optimizer, schedule, self.steps_per_epoch, self.config["epochs"], self.best.mode, total)

    def _steps_to_come(self) -> int:
        """The optimizer steps this run will still take: the rest of the current epoch (from batch
        `position.batch`), then every epoch left."""
        done, total, accumulate = self.position.batch, self.batches_per_epoch, self.config["accumulate"]
        in_epoch = batch_count(total, accumulate) - done // accumulate if done < total else 0
        return in_epoch + self.steps_per_epoch * max(0, self.config["epochs"] - self.position.epoch - 1)

    def save(self, name: str) -> None:
        if self.out is not None:
            checkpoint.save(self.state(), self.out / name)

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> Run:
        epochs, stopped = self.config["epochs"], "completed"
        if self.out is not None:
            _start_metrics(self.out / "metrics.jsonl", self.position.epoch)
        with StopFlag(self.device, self.world) as stop:
            while self.position.epoch < epochs:
                record = self._epoch(stop)
                if record is None:
                    self.save("last.pt")
                    self.progress.line(f"interrupted: saved {self.out / 'last.pt'}" if self.out else "interrupted")
                    stopped = "interrupted"
                    break
                if self.early is not None and self.early.bad >= self.config["early_stopping"]["patience"]:
                    self.progress.line(f"early stopping: {self.early.metric} has not improved for {self.early.bad} epochs")
                    stopped = "early_stopping"
                    break
        written = ["metrics.jsonl", "last.pt", "best.pt", "spec.yaml"]
        if self.out is not None and stopped != "interrupted" and self._write_torchscript():
            written.insert(3, "model.ts")
        written = [name for name in written if self.out is not None and (self.out / name).exists()]
        return Run(self.history, self.best.value, self.best.epoch, self.best.metric, stopped, self.out, written=written)

    def _epoch(self, stop: StopFlag) -> dict[str, Any] | None:
        self.sampler.set_epoch(self.position.epoch)
        order = torch.tensor(list(self.sampler), dtype=torch.long)[: self.samples]
        tally = Tally(self.device, None)
        started, first = time.perf_counter(), self.position.batch
        source = batches(self.data.train, order, self.size, first, self.device, self.workers, self.loaders)
        if not train_epoch(self.step, source, self.position, self.batches_per_epoch, tally, stop, self.progress, self.config["epochs"]):
            return None
        train_metrics = tally.result("train")  # waits for the device: the training time ends here
        training = time.perf_counter() - started
        record = {"epoch": self.position.epoch + 1, **train_metrics, **self._validate()}
        seconds = time.perf_counter() - started
        record.update(lr=self.step.optimizer.param_groups[0]["lr"], seconds=round(seconds, 3))
        samples = min(len(order) - first * self.size, (self.batches_per_epoch - first) * self.size) * self.world
        record["samples_per_s"] = round(samples / training, 1)  # training only: validation is not counted
        if self.step.scheduler is not None and not self.step.stepwise_schedule:
            self.step.scheduler.step(record[self.best.metric])
        record["best"] = self.best.update(record)
        if self.early is not None:
            self.early.update(record)
        self.position.epoch, self.position.batch = self.position.epoch + 1, 0
        self._log(record)
        return record

    def _validate(self) -> dict[str, Any]:
        val = self.data.val
        order = torch.arange(self.rank, len(val), self.world)
        tally = validation_tally(self.config, self.data, self.device, self.step.loss)
        source = batches(val, order, self.size, 0, self.device, self.workers, loaders=self.loaders)
        pad = self.size if self.evaluated is not self.model else None
        values = evaluate(self.evaluated, self.step.loss, source, tally, self.step.autocast, self.step.channels_last, pad, self.step.inputs)
        values.setdefault("val_accuracy", None)
        return values

    def _log(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        shown = [
            f"{key} {value:.4f}"
            for key, value in record.items()
            if key.endswith(("loss", "accuracy", "top5", "perplexity")) and value is not None
        ]
        line = f"epoch {record['epoch']}/{self.config['epochs']}  " + "  ".join(shown)
        speed = f"lr {record['lr']:.2e}  {record['seconds']:.1f}s  {record['samples_per_s']:,.0f} samples/s"
        self.progress.line(f"{line}  {speed}{'  *' if record['best'] else ''}")
        if self.out is None:
            return
        if record["best"]:
            self.save("best.pt")
        self.save("last.pt")
        append_line(self.out / "metrics.jsonl", json.dumps(record))

    def _write_torchscript(self) -> bool:
        """model.ts: TorchScript of the best weights (of the last ones if no epoch improved); False if
        TorchScript cannot compile the module."""
        from nncompile.compiler.export import export

        best = self.out / "best.pt"
        module = export_copy(self.model, self.batchnorms)
        if best.is_file() and not best.is_symlink():  # this run's (a link there is no file of the run's)
            module.load_state_dict(checkpoint.load(best)["model"])
        example = _examples(self.data.val, self.step.inputs)
        try:
            export(module, example, self.out / "model.ts", kind="torchscript")  # through a temporary file beside it
        except Exception as error:  # a hand-written module TorchScript cannot compile: the run still stands
            self.progress.line(f"model.ts not written: TorchScript cannot compile this module ({str(error).splitlines()[0]})")
            return False
        return True


def sync_batchnorm(model: nn.Module) -> tuple[nn.Module, dict[str, type[nn.Module]]]:
    """`model` with SyncBatchNorm in place of its BatchNorm layers (sharing their weights), and the
    classes it replaced by module name, for `export_copy` to put back."""
    replaced = {name: type(module) for name, module in model.named_modules() if isinstance(module, _BatchNorm)}
    return nn.SyncBatchNorm.convert_sync_batchnorm(model), replaced


def export_copy(model: nn.Module, batchnorms: Mapping[str, type[nn.Module]]) -> nn.Module:
    """A float32, contiguous CPU copy of `model` to export, with the BatchNorm classes that
    SyncBatchNorm replaced put back (TorchScript cannot compile SyncBatchNorm; eval-mode batch norm
    computes the same)."""
    module = cpu_copy(model).float().to(memory_format=torch.contiguous_format)
    for name, kind in batchnorms.items():
        synced = module.get_submodule(name)
        plain = kind(synced.num_features, synced.eps, synced.momentum, synced.affine, synced.track_running_stats)
        plain.load_state_dict(synced.state_dict())
        plain.train(synced.training)
        if not name:
            return plain
        parent, _, leaf = name.rpartition(".")
        setattr(module.get_submodule(parent), leaf, plain)
    return module


def _has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(module, _BatchNorm) for module in model.modules())


def _samples_per_epoch(available: int, size: int, compiling: bool, batchnorm: bool) -> int:
    """How many of a process's `available` samples an epoch trains on: a compiled step sees one batch
    size (full batches only, when there is one); a last batch of one sample is dropped (BatchNorm
    cannot train on one, and a one-sample step is mostly noise). Batches that are all of one sample
    cannot train a model with batch norm: a TrainError."""
    if batchnorm and (size == 1 or available == 1):
        where = ("batch_size",) if size == 1 else ("data",)
        raise TrainError(where, "BatchNorm cannot train on batches of one sample", "batches of two or more samples", "E0502")
    if compiling and available >= size:
        return available - available % size
    return available - 1 if size > 1 and available % size == 1 else available


def restore_cuda_rng(states: list[torch.Tensor]) -> None:
    """The saved CUDA generators, for the GPUs this machine has (one that saved on more GPUs leaves
    the extra states unused; the GPUs beyond those saved keep their seeds)."""
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for index, state in enumerate(states[:count]):
        torch.cuda.set_rng_state(state, index)


def cpu_copy(model: nn.Module) -> nn.Module:
    """A copy of `model` on the CPU, made without a second copy of its weights on the GPU (a deep copy
    would first clone every tensor on its device)."""
    memo: dict[int, Any] = {}
    for tensor in [*model.parameters(), *model.buffers()]:
        clone = tensor.detach().to("cpu", copy=True)
        memo[id(tensor)] = nn.Parameter(clone, tensor.requires_grad) if isinstance(tensor, nn.Parameter) else clone
    return copy.deepcopy(model, memo)


def _examples(split: Split, order: list[str] | None) -> tuple[torch.Tensor, ...]:
    """Two samples, the model's inputs in order, on the CPU."""
    if split.inputs is not None:
        inputs = batch.first(split.inputs, 2)
    else:
        items = [split.dataset[i][0] for i in range(min(2, len(split)))]
        inputs = {n: torch.stack([item[n] for item in items]) for n in items[0]} if isinstance(items[0], dict) else torch.stack(items)
    inputs = batch.to(inputs, torch.device("cpu"))
    return tuple(inputs[name] for name in (order or inputs)) if isinstance(inputs, dict) else (inputs,)


def _workers(config: Mapping[str, Any]) -> int:
    workers = config["data"]["workers"]
    return default_workers() if workers == "auto" else workers


def _start_metrics(path: Path, epochs: int) -> None:
    """metrics.jsonl as a run starts: the records of the `epochs` already run (a resume's; none for a
    fresh run), so that epochs after the checkpoint, which will run again, are dropped. Written anew:
    a link planted there is replaced, never followed (nor read), and lines that are no record are dropped."""
    kept = []
    if epochs and path.is_file() and not path.is_symlink():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            record = _record(line)
            if record is not None and record["epoch"] <= epochs:
                kept.append(line + "\n")
    write_atomic(path, "".join(kept))


def _record(line: str) -> dict[str, Any] | None:
    """A metrics line's record, or None if it is not one."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) and isinstance(record.get("epoch"), int) else None
