"""Lightning: a spec's model and train section as a `LightningModule` and a `LightningDataModule`, for
people who run their training with their own `lightning.Trainer`.

    from nncompile.runtime.lightning import from_spec
    module, data = from_spec("specs/digits_mlp.yaml")
    lightning.Trainer(max_epochs=10).fit(module, data)

From the train section: data, transforms, batch size, workers, loss (one, or one per output), the
optimizer with its groups, the schedule, `freeze` and `init`. The Trainer decides the rest, as Lightning
users expect: epochs, devices and strategy, precision, compilation, checkpoints and logging. Metrics
logged: `train_loss`, `val_loss`, `val_accuracy` where the targets are labels (per output with a loss per
output: `val_NAME_loss`, `val_NAME_accuracy`), `val_perplexity` for a tokens dataset.

Needs the `lightning` extra: `pip install 'nncompile[lightning]'`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

try:
    import lightning as L
except ImportError as error:  # pragma: no cover - the message is the point
    raise ImportError("runtime.lightning needs Lightning: pip install 'nncompile[lightning]'") from error

from . import batch, checkpoint
from .config import label_losses, per_output, with_defaults
from .data import Data, Split, default_workers, load
from .loop import accuracy
from .optim import PER_EPOCH_SCHEDULES, freeze, loss_function, optimizer, scheduler
from .setup import Monitor, scored_classes, scored_outputs, sequence_length


def from_spec(path: str | Path, **overrides: Any) -> tuple[SpecModule, SpecData]:
    """The spec's model (built with `overrides` of its parameters) and its train section."""
    from nncompile.compiler.diagnostics import SpecError

    from nncompile import compiler

    analysis = compiler.analyze(path, overrides)
    if not analysis.ok:
        raise SpecError(analysis.diagnostics)
    if "train" not in analysis.document.data:
        raise ValueError(f"{path} has no train section")
    from nncompile.compiler.emit import emit

    config = with_defaults(analysis.document.data["train"])
    torch.manual_seed(config["seed"])
    model = emit(analysis.graph, analysis.registry)
    data = SpecData(config, sequence_length(model))
    return SpecModule(model, config, data), data


class _Tensors(Dataset):
    """Resident tensors (or tensors by name) as a Dataset."""

    def __init__(self, split: Split):
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        return batch.take(self.split.inputs, index), batch.take(self.split.targets, index)


class SpecData(L.LightningDataModule):
    """The train section's data and transforms; batches as `nncompile train` makes them."""

    def __init__(self, config: Mapping[str, Any], block_size: int | None = None):
        super().__init__()
        self.config, self.block_size = config, block_size
        self.data: Data | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.data is None:
            self.data = load(self.config, torch.device("cpu"), self.block_size)

    def _loader(self, split: Split, shuffle: bool) -> DataLoader:
        workers = self.config["data"]["workers"]
        workers = default_workers() if workers == "auto" else workers
        dataset = _Tensors(split) if split.inputs is not None else split.dataset
        workers = 0 if split.inputs is not None else workers
        return DataLoader(
            dataset, batch_size=self.config["batch_size"], shuffle=shuffle, num_workers=workers, persistent_workers=workers > 0
        )

    def train_dataloader(self) -> DataLoader:
        self.setup()
        return self._loader(self.data.train, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        self.setup()
        return self._loader(self.data.val, shuffle=False)


class SpecModule(L.LightningModule):
    """The model, its loss, optimizer and schedule; validation reports what `nncompile train` does."""

    def __init__(self, model: nn.Module, config: Mapping[str, Any], data: SpecData):
        super().__init__()
        self.model, self.config, self.datamodule_ = model, config, data
        if "init" in config:
            checkpoint.initialize(model, config["init"])
        if "freeze" in config:
            freeze(model, config["freeze"])
        self.loss = loss_function(config, getattr(model, "nncompile_outputs", None))
        self.order = batch.input_order(model)

    def forward(self, *inputs: torch.Tensor) -> Any:
        return self.model(*inputs)

    def training_step(self, pair: tuple[Any, Any], index: int) -> torch.Tensor:
        inputs, targets = pair
        loss = self.loss(batch.run(self.model, inputs, self.order), targets)
        self.log("train_loss", loss, batch_size=batch.length(targets), prog_bar=True)
        return loss

    def validation_step(self, pair: tuple[Any, Any], index: int) -> None:
        inputs, targets = pair
        output = batch.run(self.model, inputs, self.order)
        loss = self.loss(output, targets)
        size = batch.length(targets)
        data, ignored = self.datamodule_.data, label_losses(self.config)
        if per_output(self.config):
            self.log("val_loss", loss, batch_size=size, prog_bar=True)
            outputs = output if isinstance(output, (tuple, list)) else (output,)
            for name, classes in scored_outputs(data, self.config).items():
                value = outputs[self.loss.names.index(name)]
                scored = self._log_accuracy(f"val_{name}", value, targets[name], ignored[name]) if classes else size
                if scored:
                    self.log(f"val_{name}_loss", self.loss.last[name], batch_size=scored)
            return
        scored = self._log_accuracy("val", output, targets, ignored[None], prog_bar=True) if scored_classes(data, self.config) else size
        if scored:
            self.log("val_loss", loss, batch_size=scored, prog_bar=True)

    def _log_accuracy(self, prefix: str, output: torch.Tensor, labels: torch.Tensor, ignore_index: int, **options: Any) -> int:
        """The loop's accuracy for one batch, weighted by the labels it scored, which it returns (the
        epoch's means are then over scored labels, as `nncompile train` reports them)."""
        value, count = accuracy(output.float(), labels, ignore_index)
        scored = int(count)
        if scored:
            self.log(f"{prefix}_accuracy", value, batch_size=scored, **options)
        return scored

    def on_validation_epoch_end(self) -> None:
        if self.datamodule_.data is not None and self.datamodule_.data.sequence and "val_loss" in self.trainer.callback_metrics:
            loss = float(self.trainer.callback_metrics["val_loss"])
            self.log("val_perplexity", math.exp(min(loss, 700.0)))

    def configure_optimizers(self) -> Any:
        optim = optimizer(self.model, self.config["optimizer"])
        schedule = self.config.get("schedule")
        if schedule is None:
            return optim
        epochs = max(1, self.trainer.max_epochs or 1)
        steps = max(1, math.ceil(self.trainer.estimated_stepping_batches / epochs))
        self.datamodule_.setup()
        best = Monitor.of(self.config.get("checkpoint", {}), self.datamodule_.data, self.config)
        per_epoch = schedule["type"] in PER_EPOCH_SCHEDULES
        lr_scheduler = {"scheduler": scheduler(optim, schedule, steps, epochs, best.mode), "interval": "epoch" if per_epoch else "step"}
        if per_epoch:
            lr_scheduler["monitor"] = best.metric
        return {"optimizer": optim, "lr_scheduler": lr_scheduler}
