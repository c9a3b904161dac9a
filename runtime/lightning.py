"""Lightning: a spec's model and train section as a `LightningModule` and a `LightningDataModule`, for
people who run their training with their own `lightning.Trainer`.

    from nncompile.runtime.lightning import SpecModule, from_spec
    module, data = from_spec("specs/digits_mlp.yaml", hidden=128)
    lightning.Trainer(max_epochs=10).fit(module, data)
    module = SpecModule.load_from_checkpoint("lightning_logs/version_0/checkpoints/epoch=9-step=450.ckpt")

From the train section: data, transforms, batch size, workers, loss (one, or one per output), the
optimizer with its groups, the schedule, `freeze` and `init`. The Trainer decides the rest, as Lightning
users expect: epochs, devices and strategy, precision, compilation, checkpoints and logging.

The module's hyperparameters are the spec's text, the parameters it was built with and the file it was
read from, so a checkpoint reloads with `SpecModule.load_from_checkpoint(path)` alone, also where the
spec file has since changed or gone. `init`'s weights are loaded by `from_spec` (a checkpoint holds the
trained ones, and reloading it reads no other file).

Each step is the loop's (`batch_loss`, `evaluate_batch`), and validation fills the tally `nncompile
train` fills, so the metrics are its numbers under its names: `train_loss`, `val_loss`, `val_accuracy`
and `val_top5` where the targets are labels (per output with a loss per output: `val_NAME_loss`,
`val_NAME_accuracy`), `val_perplexity` for a tokens dataset. The validation metrics are logged once per
epoch with `sync_dist=True`; under DDP the tally already sums every process's batches (a mean over all
scored labels, not a mean of per-process means).

Needs the `lightning` extra: `pip install 'nncompile[lightning]'`.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from nncompile.compiler import Analysis, Diagnostic, SpecError, analyze
from nncompile.compiler.emit import emit
from torch.utils.data import DataLoader, Dataset

try:
    import lightning as L
except ImportError as error:  # pragma: no cover - the message is the point
    raise ImportError("runtime.lightning needs Lightning: pip install 'nncompile[lightning]'") from error

from . import batch, checkpoint
from .config import with_defaults
from .data import Data, Split, default_workers, load
from .fit_checks import sequence_length
from .loop import Tallies, Tally, batch_loss, evaluate_batch, validation_tally
from .metrics import Monitor
from .optim import PER_EPOCH_SCHEDULES, freeze, loss_function, optimizer, scheduler


def from_spec(path: str | Path, **params: Any) -> tuple[SpecModule, SpecData]:
    """The spec's model (built with `params` overriding its parameters, `init`'s weights loaded) and
    its train section."""
    analysis = analyze(path, params)  # here, so that diagnostics name the file and its lines
    if not analysis.ok:
        raise SpecError(analysis.diagnostics)
    module = SpecModule(analysis.document.text, params, str(path))
    if "init" in module.config:
        checkpoint.initialize(module.model, module.config["init"])
    return module, module.spec_data


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

    def loaded(self) -> Data:
        """The data, read on first use."""
        self.setup()
        return self.data

    def _loader(self, split: Split, shuffle: bool) -> DataLoader:
        workers = self.config["data"]["workers"]
        workers = default_workers() if workers == "auto" else workers
        dataset = _Tensors(split) if split.inputs is not None else split.dataset
        workers = 0 if split.inputs is not None else workers
        return DataLoader(
            dataset,
            batch_size=self.config["batch_size"],
            shuffle=shuffle,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),  # batches copy to a GPU asynchronously
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.loaded().train, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.loaded().val, shuffle=False)


class SpecModule(L.LightningModule):
    """The model, its loss, optimizer and schedule; validation reports what `nncompile train` does."""

    def __init__(self, spec: str, params: Mapping[str, Any] | None = None, source: str = "spec.yaml"):
        """`spec`: a spec's text, with a train section; `params`: overrides of its parameters (as
        `from_spec` takes them); `source`: the file it was read from, which diagnostics name."""
        super().__init__()
        self.save_hyperparameters()  # spec, params, source: what load_from_checkpoint builds it from
        analysis = _analysis(spec, dict(params or {}), source)
        self.config = with_defaults(analysis.document.data["train"])
        torch.manual_seed(self.config["seed"])
        self.model = emit(analysis.graph, analysis.registry)
        if "freeze" in self.config:
            freeze(self.model, self.config["freeze"])
        self.loss = loss_function(self.config, getattr(self.model, "nncompile_outputs", None))
        self.order = batch.input_order(self.model)
        self.spec_data = SpecData(self.config, sequence_length(self.model))
        self._tally: Tally | Tallies | None = None

    def forward(self, *inputs: torch.Tensor) -> Any:
        return self.model(*inputs)

    def training_step(self, pair: tuple[Any, Any], index: int) -> torch.Tensor:
        inputs, targets = pair
        loss = batch_loss(self.model, self.loss, inputs, targets, self.order)
        self.log("train_loss", loss, batch_size=batch.length(targets), prog_bar=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        self._tally = validation_tally(self.config, self.spec_data.loaded(), self.device, self.loss)

    def validation_step(self, pair: tuple[Any, Any], index: int) -> None:
        inputs, targets = pair
        evaluate_batch(self.model, self.loss, inputs, targets, self._tally, self.order)

    def on_validation_epoch_end(self) -> None:
        for name, value in self._tally.result("val").items():
            self.log(name, value, sync_dist=True, prog_bar=name in ("val_loss", "val_accuracy"))

    def configure_optimizers(self) -> Any:
        optim = optimizer(self.model, self.config["optimizer"])
        schedule = self.config.get("schedule")
        if schedule is None:
            return optim
        epochs = max(1, self.trainer.max_epochs or 1)
        steps = max(1, math.ceil(self.trainer.estimated_stepping_batches / epochs))
        best = Monitor.of(self.config.get("checkpoint", {}), self.spec_data.loaded(), self.config)
        per_epoch = schedule["type"] in PER_EPOCH_SCHEDULES
        lr_scheduler = {"scheduler": scheduler(optim, schedule, steps, epochs, best.mode), "interval": "epoch" if per_epoch else "step"}
        if per_epoch:
            lr_scheduler["monitor"] = best.metric
        return {"optimizer": optim, "lr_scheduler": lr_scheduler}


def _analysis(spec: str, params: dict[str, Any], source: str) -> Analysis:
    """The spec's text analysed as its file would be, from a scratch copy (the file itself may have
    moved or changed since); raises SpecError naming `source`."""
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder) / (Path(source).name or "spec.yaml")
        scratch.write_bytes(spec.encode("utf-8"))
        analysis = analyze(scratch, params)
    if not analysis.ok:
        raise SpecError([_naming(diagnostic, str(scratch), source) for diagnostic in analysis.diagnostics])
    if "train" not in analysis.document.data:
        raise ValueError(f"{source} has no train section")
    return analysis


def _naming(diagnostic: Diagnostic, scratch: str, source: str) -> Diagnostic:
    """`diagnostic` pointing into `source` instead of its scratch copy."""
    span = diagnostic.span
    if span is None or span.file != scratch:
        return diagnostic
    return dataclasses.replace(diagnostic, span=dataclasses.replace(span, file=source))
