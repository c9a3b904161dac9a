"""Loss, optimizer (parameter groups, frozen layers) and learning-rate schedule from the train section."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from nncompile.compiler.layer_patterns import matches
from nncompile.compiler.train_schema import LOSSES, OPTIMIZERS, SCHEDULES
from torch import nn

from .config import TrainError, loss_settings, per_output

_LOSSES = {
    "cross_entropy": nn.CrossEntropyLoss,
    "nll": nn.NLLLoss,
    "mse": nn.MSELoss,
    "l1": nn.L1Loss,
    "smooth_l1": nn.SmoothL1Loss,
    "bce_with_logits": nn.BCEWithLogitsLoss,
}
_OPTIMIZERS = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
}
PER_EPOCH_SCHEDULES = ("plateau",)
assert set(_LOSSES) == set(LOSSES) and set(_OPTIMIZERS) == set(OPTIMIZERS), "the schema and the runtime name the same classes"
assert set(SCHEDULES) == {"constant", "step", "cosine", "onecycle", "plateau"}


def loss_function(config: Mapping[str, Any], outputs: Sequence[str] | None = None) -> nn.Module:
    """The train section's loss; a loss per named output (`loss: {logits: cross_entropy, box: …}`)
    becomes their weighted sum over the model's outputs, named by `outputs` (the spec's output
    names; for other modules, the order the mapping writes them in)."""
    if per_output(config):
        settings = {name: loss_settings({"loss": value}) for name, value in config["loss"].items()}
        names = list(outputs) if outputs else list(settings)
        unknown = [name for name in settings if name not in names]
        if unknown:
            raise TrainError(("loss", unknown[0]), f"the model has no output '{unknown[0]}'", f"its outputs: {', '.join(names)}", "E0502")
        losses = {name: _one(kind, {k: v for k, v in options.items() if k != "weight"}) for name, (kind, options) in settings.items()}
        weights = {name: options.get("weight", 1.0) for name, (_, options) in settings.items()}
        return OutputLosses(names, losses, weights)
    return _one(*loss_settings(config))


def _one(name: str, options: Mapping[str, Any]) -> nn.Module:
    kind = _LOSSES[name]
    if name in ("cross_entropy", "nll"):
        return ClassesLast(kind(**options), kind(**options, reduction="sum"))
    return FloatTargets(kind(**options))


class FloatTargets(nn.Module):
    """A loss on float targets (regression, `bce_with_logits`) that also takes integer ones, such
    as 0/1 labels saved as int64 or uint8: they are read as float32."""

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss(output, target if target.is_floating_point() else target.float())


class OutputLosses(nn.Module):
    """A loss per named output, weighted and summed; the parts of the last call are kept (detached)
    for the per-output metrics. Outputs without a loss are not trained on."""

    def __init__(self, names: list[str], losses: dict[str, nn.Module], weights: dict[str, float]) -> None:
        super().__init__()
        self.names, self.weights = names, weights
        self.losses = nn.ModuleDict(losses)
        self.last: dict[str, torch.Tensor] = {}

    def forward(self, outputs: Any, targets: Mapping[str, torch.Tensor]) -> torch.Tensor:
        outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
        total = None
        for name, output in zip(self.names, outputs):
            if name in self.losses:
                part = self.losses[name](output, targets[name])
                self.last[name] = part.detach()
                total = part * self.weights[name] if total is None else total + part * self.weights[name]
        assert total is not None, "no output has a loss"
        return total


class ClassesLast(nn.Module):
    """A classification loss that also takes scores with the classes last: a language model's
    `[B, T, V]` against `[B, T]` labels (torch's losses want the classes at dim 1, as `[B, C, H, W]`
    against `[B, H, W]`). Scores whose leading dims are the labels' shape are read as classes-last and
    flattened to `[B*T, V]` against `[B*T]` (not moved to dim 1: a strided class dim is 2.5-3x slower).
    Without autograd (validation), the loss is summed over chunks of rows in float32, as autocast
    computes it, so that no float32 copy of all the scores is made (GBs for a language model's logits);
    `summed` is the same loss with `reduction='sum'`."""

    CHUNK_BYTES = 2**26
    """The float32 scores of one chunk of rows, at most (one row at least)."""

    def __init__(self, loss: nn.Module, summed: nn.Module) -> None:
        super().__init__()
        self.loss, self.summed = loss, summed

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if output.dim() > 2 and output.dim() == target.dim() + 1 and output.shape[:-1] == target.shape:
            output, target = output.reshape(-1, output.shape[-1]), target.reshape(-1)
        labels = output.dim() == 2 and not target.is_floating_point()  # (not class probabilities)
        if labels and not (torch.is_grad_enabled() and output.requires_grad):
            return self._chunked(output, target)
        return self.loss(output, target)

    def _chunked(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The mean over the scored labels (not `ignore_index`; NaN where there is none, as torch's)."""
        rows = max(1, self.CHUNK_BYTES // (4 * scores.shape[-1]))
        total = sum(self.summed(part.float(), chosen) for part, chosen in zip(scores.split(rows), labels.split(rows)))
        return total / (labels != self.loss.ignore_index).sum()


def check_patterns(names: Sequence[str], patterns: Sequence[str], where: tuple) -> None:
    for index, pattern in enumerate(patterns):
        if not any(matches(name, pattern) for name in names):
            layers = sorted({name.rsplit(".", 1)[0] for name in names})
            shown = ", ".join(layers[:12]) + (", …" if len(layers) > 12 else "")
            raise TrainError((*where, index), f"pattern '{pattern}' matches no parameter", f"layers with parameters: {shown}", "E0504")


def freeze(model: nn.Module, patterns: Sequence[str]) -> int:
    """Stop gradients to every parameter in a layer matching `patterns`; returns how many were frozen."""
    named = dict(model.named_parameters())
    check_patterns(list(named), patterns, ("freeze",))
    frozen = [p for name, p in named.items() if any(matches(name, pattern) for pattern in patterns)]
    for parameter in frozen:
        parameter.requires_grad_(False)
    return len(frozen)


def optimizer(model: nn.Module, settings: Mapping[str, Any]) -> torch.optim.Optimizer:
    """The optimizer over the trainable parameters, one group per `groups` entry plus the rest."""
    options = {
        key: (tuple(value) if isinstance(value, list) else value) for key, value in settings.items() if key not in ("type", "groups")
    }
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise TrainError(("freeze",), "every parameter is frozen: there is nothing to train", code="E0504")
    groups_settings = settings.get("groups", [])
    for index, group in enumerate(groups_settings):
        check_patterns([name for name, _ in named], group["params"], ("optimizer", "groups", index, "params"))
    groups: list[dict[str, Any]] = [{"params": [], **{k: v for k, v in g.items() if k != "params"}} for g in groups_settings]
    rest: list[nn.Parameter] = []
    for name, parameter in named:
        owner = next((g for g, s in zip(groups, groups_settings) if any(matches(name, p) for p in s["params"])), None)
        (owner["params"] if owner is not None else rest).append(parameter)
    groups = [g for g in groups if g["params"]] + ([{"params": rest}] if rest else [])
    if fused(settings["type"], [parameter for _, parameter in named]):
        options["fused"] = True
    try:
        return _OPTIMIZERS[settings["type"]](groups, **options)
    except ValueError as error:  # torch refuses the combination (nesterov without momentum, …)
        raise TrainError(("optimizer",), f"torch.optim refuses these settings: {error}", code="E0502") from None


FUSED = ("adam", "adamw")
"""The optimizers run by torch's fused CUDA kernels where they can be."""


def fused(kind: str, parameters: Sequence[torch.Tensor]) -> bool:
    """Whether the step runs as torch's fused kernel (one kernel over every parameter, not a loop of
    small ones; torch's default is the `foreach` loop): Adam and AdamW whose parameters are all
    floating-point CUDA tensors (a CPU-offloaded or integer one keeps the default)."""
    return kind in FUSED and all(p.device.type == "cuda" and p.is_floating_point() for p in parameters)


def scheduler(
    optim: torch.optim.Optimizer,
    settings: Mapping[str, Any] | None,
    steps_per_epoch: int,
    epochs: int,
    mode: str,
    total: int | None = None,
):
    """The schedule, stepped after every optimizer step (`plateau`: after every epoch, on the
    monitored metric, whose `mode` is min or max), or None. It is laid out over `total` optimizer
    steps (by default `steps_per_epoch * epochs`; a resumed run's: those taken and those to come)."""
    if settings is None:
        return None
    kind = settings["type"]
    total = max(1, steps_per_epoch * epochs if total is None else total)
    if kind == "onecycle":
        max_lr = settings.get("max_lr", [g["lr"] for g in optim.param_groups])
        extra = {k: settings[k] for k in ("pct_start", "div_factor", "final_div_factor") if k in settings}
        return torch.optim.lr_scheduler.OneCycleLR(optim, max_lr=max_lr, total_steps=total, **extra)
    if kind == "plateau":
        extra = {k: settings[k] for k in ("factor", "patience", "min_lr") if k in settings}
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optim, mode=mode, **extra)
    warmup = round(settings.get("warmup_epochs", 0) * steps_per_epoch)
    factors = [_factor(kind, settings, group["lr"], warmup, total, steps_per_epoch) for group in optim.param_groups]
    return torch.optim.lr_scheduler.LambdaLR(optim, factors)


def _factor(
    kind: str, settings: Mapping[str, Any], base_lr: float, warmup: int, total: int, steps_per_epoch: int
) -> Callable[[int], float]:
    """The learning rate at optimizer step `step` as a fraction of the group's base rate."""
    floor = min(1.0, settings.get("min_lr", 0.0) / base_lr)
    gamma, step_size = settings.get("gamma", 0.1), settings.get("step_size", 1) * steps_per_epoch

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if kind == "step":
            return gamma ** (step // step_size)
        if kind == "cosine":
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
        return 1.0

    return factor
