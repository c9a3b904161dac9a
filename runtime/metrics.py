"""The metrics a run measures (accuracy over which classes, per output), and the monitor of the best one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nncompile.compiler.train_schema import CLASSIFICATION_LOSSES

from .config import TrainError, is_classification, per_output
from .data import Data


def scored_classes(data: Data, config: Mapping[str, Any]) -> int | None:
    """The class count that accuracy is scored over, or None when the run is not a classification."""
    return data.num_classes if data.targets_are_labels and is_classification(config) else None


def scored_outputs(data: Data, config: Mapping[str, Any]) -> dict[str, int | None]:
    """With a loss per output: each output's class count for accuracy (None: loss only)."""
    found = {}
    for name, value in config["loss"].items():
        kind = value if isinstance(value, str) else value["type"]
        classes, labels = (data.outputs or {}).get(name, (None, False))
        found[name] = classes if labels and kind in CLASSIFICATION_LOSSES else None
    return found


def measured(data: Data, config: Mapping[str, Any]) -> list[str]:
    """The metrics an epoch reports."""
    if per_output(config):
        names = ["train_loss", "val_loss"]
        for name, classes in scored_outputs(data, config).items():
            names += (
                [f"val_{name}_loss"]
                + ([f"val_{name}_accuracy"] if classes else [])
                + ([f"val_{name}_top5"] if classes and classes > 5 else [])
            )
        return names
    classes = scored_classes(data, config)
    names = ["train_loss", "val_loss"] + (["val_accuracy"] if classes else []) + (["val_top5"] if classes and classes > 5 else [])
    return names + (["val_perplexity"] if data.sequence else [])


@dataclass
class Monitor:
    """The best value of a metric so far, and for how many epochs it has not improved."""

    metric: str
    mode: str
    min_delta: float = 0.0
    value: float | None = None
    epoch: int | None = None
    bad: int = 0

    @classmethod
    def of(cls, section: Mapping[str, Any], data: Data, config: Mapping[str, Any], where: str = "checkpoint") -> Monitor:
        available = measured(data, config)
        metric = section.get("metric", "val_accuracy" if "val_accuracy" in available and not data.sequence else "val_loss")
        if metric not in available:
            raise TrainError((where, "metric"), f"this run does not measure '{metric}'", f"it measures {', '.join(available)}", "E0502")
        mode = section.get("mode", "min" if metric.endswith(("loss", "perplexity")) else "max")
        return cls(metric, mode, section.get("min_delta", 0.0))

    def update(self, record: Mapping[str, Any]) -> bool:
        """Take an epoch's record; True if it improved on the best."""
        value = record[self.metric]
        better = self.value is None or (value < self.value - self.min_delta if self.mode == "min" else value > self.value + self.min_delta)
        if better:
            self.value, self.epoch, self.bad = value, record["epoch"], 0
        else:
            self.bad += 1
        return better
