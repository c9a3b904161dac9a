"""nncompile's runtime: trains any `nn.Module` (compiled from a spec or hand-written) from a train section."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from .trainer import Run

__all__ = ["train"]


def train(model: nn.Module, config: Mapping[str, Any], *, out: str | Path | None = None, resume: str | Path | None = None) -> Run:
    """Train `model` with `config`, a train section as plain data (`{"data": {"dataset": "digits"},
    "optimizer": {"type": "adam", "lr": 1e-3}}`). With `out`, keeps the run directory (metrics.jsonl,
    last.pt, best.pt, model.ts); `resume` continues from a last.pt.

    Raises SpecError for an invalid section and TrainError for settings that do not fit the model or data.
    """
    from .config import checked
    from .trainer import fit

    return fit(model, checked(config), Path(out) if out is not None else None, resume)
