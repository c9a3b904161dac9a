"""The `tokens` dataset: a file of token ids, read memory-mapped, cut into windows for next-token
prediction (each sample is `block_size` tokens; its target is the same window shifted by one).

Files: `.npy` (any integer dtype), `.pt` (a 1-D integer tensor, loaded memory-mapped, weights only) or
`.bin`, nanoGPT's raw format (`dtype`, uint16 by default). The last `val_split` of the tokens is held out
(default 0.1): validation reads it as consecutive windows, the same on every epoch; training reads
`samples` windows (default: as many as fit side by side in the training part) at random offsets,
drawn once from the seed and shuffled each epoch.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from nncompile.compiler.files import no_such
from nncompile.compiler.train_schema import MAX_SAMPLES
from nncompile.compiler.weights import CheckpointError, read
from torch.utils.data import Dataset

from .config import TrainError

WHERE = ("data", "path")
SCAN_CHUNK = 1 << 24


def read_tokens(path: Path, dtype: str) -> Any:
    """A 1-D integer array-like over the file, without reading it into memory."""
    if not path.is_file():
        raise TrainError(WHERE, no_such(path))
    try:
        if path.suffix == ".npy":
            tokens = np.load(path, mmap_mode="r", allow_pickle=False)
        elif path.suffix == ".pt":
            tokens = read(path, "token ids", real=True)
        else:
            tokens = np.memmap(path, dtype=np.dtype(dtype), mode="r")
    except CheckpointError as error:
        raise TrainError(WHERE, str(error)) from None
    except Exception as error:
        raise TrainError(WHERE, f"cannot read {path} as token ids: {str(error).splitlines()[0][:200]}") from None
    kind = tokens.dtype.is_floating_point if isinstance(tokens, torch.Tensor) else not np.issubdtype(tokens.dtype, np.integer)
    if getattr(tokens, "ndim", None) != 1 or kind:
        raise TrainError(
            WHERE, f"{path} must hold a 1-D array of integer token ids (found {getattr(tokens, 'shape', '?')}, {tokens.dtype})"
        )
    return tokens


class TokenWindows(Dataset):
    """Windows of `block + 1` tokens starting at `starts`: (tokens[s : s+block], tokens[s+1 : s+block+1])."""

    def __init__(self, tokens: Any, starts: torch.Tensor, block: int):
        self.tokens, self.starts, self.block = tokens, starts, block

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        start = int(self.starts[index])
        window = self.tokens[start : start + self.block + 1]
        window = window.to(torch.long) if isinstance(window, torch.Tensor) else torch.from_numpy(np.asarray(window, dtype=np.int64))
        return window[:-1], window[1:]


def vocabulary(tokens: Any, declared: int | None = None) -> int:
    """The largest token id + 1, scanned in chunks; with `declared` (`vocab_size`), that size, once
    the scan has found no id beyond it (skipped where the file's dtype holds no larger id)."""
    if declared is not None and declared >= _id_limit(tokens):
        return declared
    largest, smallest = 0, 0
    for start in range(0, len(tokens), SCAN_CHUNK):
        chunk = tokens[start : start + SCAN_CHUNK]
        largest = max(largest, int(chunk.max()))
        smallest = min(smallest, int(chunk.min()))
    if smallest < 0:
        raise TrainError(WHERE, f"token ids must not be negative (found {smallest})")
    if declared is not None and largest >= declared:
        raise TrainError(("data", "vocab_size"), f"the file holds token id {largest}, beyond vocab_size {declared}")
    return declared or largest + 1


def _id_limit(tokens: Any) -> int:
    """One more than the largest id the file's dtype can hold."""
    dtype = tokens.dtype
    info = torch.iinfo(dtype) if isinstance(dtype, torch.dtype) else np.iinfo(dtype)
    return int(info.max) + 1


def token_splits(data: Mapping[str, Any], seed: int, block: int) -> tuple[TokenWindows, TokenWindows, int]:
    """Train and validation windows, and the vocabulary size."""
    tokens = read_tokens(Path(data["path"]), data["dtype"])
    fraction = data.get("val_split", 0.1)
    if not isinstance(fraction, float):
        raise TrainError(("data", "val_split"), "a tokens file has no test split: hold out a fraction, e.g. val_split: 0.1")
    held_out = int(len(tokens) * fraction)
    train_end = len(tokens) - held_out
    if train_end < block + 1 or held_out < block + 1:
        raise TrainError(
            WHERE,
            f"{len(tokens):,} tokens leave {train_end:,} to train on and {held_out:,} to validate on; "
            f"each needs more than block_size ({block})",
            "use a longer file, a shorter block_size or another val_split",
        )
    samples = data.get("samples", train_end // block)
    if samples > MAX_SAMPLES:  # the schema bounds `samples`; this is the default, as many windows as fit
        raise TrainError(WHERE, f"{samples:,} training windows: a dataset has at most {MAX_SAMPLES:,} samples", "set samples lower")
    generator = torch.Generator().manual_seed(seed)
    train_starts = torch.randint(0, train_end - block, (samples,), generator=generator)
    val_starts = torch.arange(train_end, len(tokens) - block, block)
    vocab = vocabulary(tokens, data.get("vocab_size"))
    return TokenWindows(tokens, train_starts, block), TokenWindows(tokens, val_starts, block), vocab
