"""Checkpoints: written atomically, read (through `nncompile.compiler.weights`) with `weights_only=True`
and checked tensor by tensor before anything copies them; and weights for transfer learning."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from nncompile.compiler.files import replacing
from nncompile.compiler.layer_patterns import matches
from nncompile.compiler.weights import CHECKPOINT_FORMAT, CheckpointError, read, state_dict_of
from torch import nn

from .config import TrainError
from .optim import check_patterns

VERSION = 1


def save(state: Mapping[str, Any], path: Path) -> None:
    """Write `state` to `path` through a temporary file and a rename: a reader (or a crash) never
    sees half a file, and a link planted at `path` is replaced, never written through."""
    with replacing(path) as temporary, open(temporary, "wb") as file:
        torch.save({"format": CHECKPOINT_FORMAT, "version": VERSION, **state}, file)
        file.flush()
        os.fsync(file.fileno())


RESUMABLE = ("model", "optimizer", "scheduler", "scaler", "rng", "position", "monitors")


def load(path: str | Path) -> dict[str, Any]:
    """A checkpoint written by `save` (tensors and plain data only: nothing is unpickled as code),
    with the parts a resume needs."""
    state = read(path, "a checkpoint")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not an nncompile checkpoint")
    missing = [key for key in RESUMABLE if key not in state]
    if missing or not isinstance(state["model"], dict):
        raise CheckpointError(f"{path} is damaged: it lacks {', '.join(missing) or 'a model state_dict'}")
    return state


def initialize(model: nn.Module, settings: Mapping[str, Any]) -> list[str]:
    """Load `init.from` into `model`; returns notes on what was left out. Raises TrainError when
    `strict` and the keys or shapes differ (beyond the `exclude` patterns)."""
    try:
        weights = state_dict_of(settings["from"])
    except CheckpointError as error:
        raise TrainError(("init", "from"), str(error), code="E0503") from None
    own = model.state_dict()
    exclude: Sequence[str] = settings.get("exclude", [])
    check_patterns(list(own), exclude, ("init", "exclude"))
    kept = {k: v for k, v in weights.items() if not any(matches(k, p) for p in exclude)}
    missing = [k for k in own if k not in kept and not any(matches(k, p) for p in exclude)]
    unexpected = [k for k in kept if k not in own]
    reshaped = [f"{k} {list(kept[k].shape)} → {list(own[k].shape)}" for k in kept if k in own and kept[k].shape != own[k].shape]
    problems = [(what, keys) for what, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", reshaped)) if keys]
    if problems and settings["strict"]:
        report = "; ".join(f"{what}: {_first(keys)}" for what, keys in problems)
        hint = "exclude the layers you replace (exclude: [fc]) or set strict: false"
        raise TrainError(("init", "from"), f"{settings['from']} does not fit the model ({report})", hint, "E0503")
    loadable = {k: v for k, v in kept.items() if k in own and v.shape == own[k].shape}
    model.load_state_dict(loadable, strict=False)
    return [f"init: {what}, left as initialised: {_first(keys)}" for what, keys in problems if what != "unexpected"] + (
        [f"init: ignored keys the model does not have: {_first(unexpected)}"] if unexpected else []
    )


def _first(keys: list[str], shown: int = 4) -> str:
    return ", ".join(keys[:shown]) + (f" and {len(keys) - shown} more" if len(keys) > shown else "")
