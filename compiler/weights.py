"""Weight files: a `.pt` read with `weights_only=True` (memory-mapped where the file allows) and checked
tensor by tensor before anything copies it, a state_dict or an nncompile checkpoint's model, loaded
strictly into a module with every mismatch listed. `build --weights` and the runtime's checkpoints
read through here."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .diagnostics import UsageError, did_you_mean
from .files import no_such

CHECKPOINT_FORMAT = "nncompile-checkpoint"


class CheckpointError(Exception):
    """A weights file or checkpoint that cannot be read, or whose contents do not fit the run."""


def read(path: str | Path, what: str, real: bool = False) -> Any:
    """What a `.pt` file holds, loaded weights only (memory-mapped where its format allows, so its
    tensors are not read in), every tensor in it checked with `tensor_problem` (`real`: floats and
    integers only). Raises CheckpointError saying why it cannot be read as `what`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(no_such(path) if not path.exists() else f"{path}: not a regular file")
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
    if isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT:
        if not isinstance(state.get("model"), dict):
            raise CheckpointError(f"{path} is an nncompile checkpoint without a model state_dict")
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise CheckpointError(f"{path} holds neither a checkpoint nor a state_dict (a mapping of names to tensors)")
    return state


def load_weights(module: nn.Module, path: str) -> None:
    """Load a state_dict or a training checkpoint into `module`, strictly: every mismatch is listed."""
    try:
        weights = state_dict_of(path)
    except CheckpointError as error:
        raise UsageError(str(error)) from None
    own = module.state_dict()
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    reshaped = [
        f"{k}: the file has {list(weights[k].shape)}, the model {list(own[k].shape)}"
        for k in own
        if k in weights and weights[k].shape != own[k].shape
    ]
    if missing or unexpected or reshaped:
        lines = [f"  missing: {k}" for k in missing]
        for key in unexpected:
            hint = _renamed(key, weights, own, missing)
            lines.append(f"  unexpected: {key}" + (f" ({hint})" if hint else ""))
        lines += [f"  wrong shape: {text}" for text in reshaped]
        raise UsageError(f"{path} does not fit the model:", lines)
    module.load_state_dict(weights, strict=True)


def _renamed(key: str, weights: dict, own: dict, missing: list[str]) -> str | None:
    """A missing key this one may be the old name of: the one of the same kind (`.weight`) and shape,
    or else the nearest in spelling."""
    kind = key.rpartition(".")[2]
    alike = [k for k in missing if k.rpartition(".")[2] == kind and own[k].shape == weights[key].shape]
    return f"did you mean '{alike[0]}'? (same shape)" if len(alike) == 1 else did_you_mean(key, missing)
