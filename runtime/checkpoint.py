"""Checkpoints: written atomically, read with `weights_only=True`; and weights for transfer learning."""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from compiler.layer_patterns import matches

from .config import TrainError
from .optim import check_patterns

FORMAT = "nncompile-checkpoint"
VERSION = 1


def save(state: Mapping[str, Any], path: Path) -> None:
    """Write `state` to `path` through a temporary file and a rename: a reader (or a crash) never
    sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save({"format": FORMAT, "version": VERSION, **state}, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class CheckpointError(Exception):
    """A checkpoint file that cannot be read, or whose contents do not fit the run."""


RESUMABLE = ("model", "optimizer", "scheduler", "scaler", "rng", "position", "monitors")


def load(path: str | Path) -> dict[str, Any]:
    """A checkpoint written by `save` (tensors and plain data only: nothing is unpickled as code),
    with the parts a resume needs."""
    state = _read(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an nncompile checkpoint")
    missing = [key for key in RESUMABLE if key not in state]
    if missing or not isinstance(state["model"], dict):
        raise CheckpointError(f"{path} is damaged: it lacks {', '.join(missing) or 'a model state_dict'}")
    return state


def _read(path: str | Path) -> Any:
    try:
        if not Path(path).is_file():
            raise CheckpointError(f"{path}: no such file" if not Path(path).exists() else f"{path}: not a regular file")
        with warnings.catch_warnings():  # torch's notes on unusual pickles: the file is judged below
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except Exception as error:  # any file torch cannot read as weights only: never advice to unpickle it
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        reason = "it holds objects other than tensors and plain data" if "weights_only" in str(error) else first[:200]
        raise CheckpointError(f"cannot read {path} as a checkpoint: {reason}") from None


def state_dict_of(path: str | Path) -> dict[str, torch.Tensor]:
    """The weights in a checkpoint, or in a plain `state_dict` file (torchvision's format)."""
    state = _read(path)
    if isinstance(state, dict) and state.get("format") == FORMAT:
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} holds neither a checkpoint nor a state_dict (a mapping of names to tensors)")
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
