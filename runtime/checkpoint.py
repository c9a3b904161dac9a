"""Checkpoints: written atomically, read with `weights_only=True` (memory-mapped where the file allows)
and checked tensor by tensor before anything copies them; and weights for transfer learning."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from nncompile.compiler.files import replacing
from nncompile.compiler.layer_patterns import matches
from torch import nn

from .config import TrainError
from .optim import check_patterns

FORMAT = "nncompile-checkpoint"
VERSION = 1


def save(state: Mapping[str, Any], path: Path) -> None:
    """Write `state` to `path` through a temporary file and a rename: a reader (or a crash) never
    sees half a file, and a link planted at `path` is replaced, never written through."""
    with replacing(path) as temporary, open(temporary, "wb") as file:
        torch.save({"format": FORMAT, "version": VERSION, **state}, file)
        file.flush()
        os.fsync(file.fileno())


class CheckpointError(Exception):
    """A checkpoint file that cannot be read, or whose contents do not fit the run."""


RESUMABLE = ("model", "optimizer", "scheduler", "scaler", "rng", "position", "monitors")


def load(path: str | Path) -> dict[str, Any]:
    """A checkpoint written by `save` (tensors and plain data only: nothing is unpickled as code),
    with the parts a resume needs."""
    state = read(path, "a checkpoint")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an nncompile checkpoint")
    missing = [key for key in RESUMABLE if key not in state]
    if missing or not isinstance(state["model"], dict):
        raise CheckpointError(f"{path} is damaged: it lacks {', '.join(missing) or 'a model state_dict'}")
    return state


def read(path: str | Path, what: str, real: bool = False) -> Any:
    """What a `.pt` file holds, loaded weights only (memory-mapped where its format allows, so its
    tensors are not read in), every tensor in it checked with `tensor_problem` (`real`: floats and
    integers only). Raises CheckpointError saying why it cannot be read as `what`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file" if not path.exists() else f"{path}: not a regular file")
    try:
        try:
            found = _load(path, mmap=True)
        except RuntimeError as error:
            if "mmap can only be used" not in str(error):
                raise
            found = _load(path, mmap=False)  # the legacy format is read in: the file's size bounds it
    except Exception as error:  # any file torch cannot read as weights only: never advice to unpickle it
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        reason = "it holds objects other than tensors and plain data" if "weights_only" in str(error) else first[:200]
        raise CheckpointError(f"cannot read {path} as {what}: {reason}") from None
    for where, tensor in _tensors_in(found):
        problem = tensor_problem(tensor, real)
        if problem:
            raise CheckpointError(f"cannot read {path} as {what}: {'.'.join(map(str, where)) or 'its tensor'} is {problem}")
    return found


def _load(path: Path, mmap: bool) -> Any:
    with warnings.catch_warnings():  # torch's notes on unusual pickles: the file is judged by the caller
        warnings.simplefilter("ignore")
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)


def _tensors_in(value: Any) -> Iterator[tuple[tuple, torch.Tensor]]:
    """Every tensor inside dicts, lists and tuples, with the keys that lead to it (no recursion: a
    file may nest deeply)."""
    pending: list[tuple[tuple, Any]] = [((), value)]
    while pending:
        where, item = pending.pop()
        if isinstance(item, torch.Tensor):
            yield where, item
        elif isinstance(item, dict):
            pending.extend(((*where, key), inner) for key, inner in item.items())
        elif isinstance(item, (list, tuple)):
            pending.extend(((*where, index), inner) for index, inner in enumerate(item))


def tensor_problem(tensor: torch.Tensor, real: bool = False) -> str | None:
    """Why a loaded tensor cannot be used, or None: it must be a dense, strided CPU tensor whose
    storage holds every element it shows (a view expanded to 2**33 rows of one value does not: any
    copy of it would take its full size); `real`: of a float or integer dtype (not bool, not complex)."""
    if tensor.layout != torch.strided:
        return f"a {str(tensor.layout).removeprefix('torch.')} tensor: only dense tensors are read (save tensor.to_dense())"
    if tensor.device.type != "cpu":
        return f"on the {tensor.device.type} device, which holds no data"
    if real and (tensor.dtype == torch.bool or tensor.is_complex()):
        return f"a {str(tensor.dtype).removeprefix('torch.')} tensor: save floats or integers"
    needed = tensor.numel() * tensor.element_size()
    held = tensor.untyped_storage().nbytes() - tensor.storage_offset() * tensor.element_size()
    if needed > held:
        return f"a view of {tensor.numel():,} elements over {held:,} bytes (expanded or overlapping): save tensor.clone()"
    return None


def state_dict_of(path: str | Path) -> dict[str, torch.Tensor]:
    """The weights in a checkpoint, or in a plain `state_dict` file (torchvision's format)."""
    state = read(path, "a checkpoint")
    if isinstance(state, dict) and state.get("format") == FORMAT:
        if not isinstance(state.get("model"), dict):
            raise CheckpointError(f"{path} is an nncompile checkpoint without a model state_dict")
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
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
