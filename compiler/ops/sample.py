"""An op's sample: a small use of it that the tests write as a spec, with its dtype rule, so that
every fact of the op is held to torch (`tests/op_samples.py`, `tests/test_op_registry.py`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .core import FLOAT_DTYPES, INT_DTYPES

DTYPES = (*FLOAT_DTYPES, *INT_DTYPES, "bool")


@dataclass(frozen=True)
class DtypeCase:
    """Inputs of `dtypes` (shaped as the sample's inputs, its last repeated for more) and the layer's
    `args` (None: the sample's): the dtype of the output, or None where check refuses them (as torch does)."""

    dtypes: tuple[str, ...]
    gives: str | None
    args: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Sample:
    """A small use of the op, which the tests write as a spec (`tests/op_samples.py`) to hold every fact
    of the op to torch: one layer `{id: sample, op: NAME, **args}` reading every input, in order.

    `inputs` are per-sample shapes by name (a size `T` is symbolic: 8 to 64, default 16), all of
    `dtype`; `then` are layers after it where it cannot end a model (a split's pieces to pick).
    `dtypes` is the op's dtype rule: for inputs all of each of the seven dtypes, the dtype of its
    first output, or None where check refuses them; `cases` adds mixed dtypes and other arguments."""

    inputs: Mapping[str, tuple[int | str, ...]]
    dtypes: Mapping[str, str | None]
    args: Mapping[str, Any] = field(default_factory=dict)
    dtype: str = "float32"
    then: tuple[Mapping[str, Any], ...] = ()
    cases: tuple[DtypeCase, ...] = ()


def dtype_rule(gives: Callable[[str], str | None]) -> dict[str, str | None]:
    """A dtype rule as a table over the seven dtypes: `gives(dtype)` for inputs of each."""
    return {dtype: gives(dtype) for dtype in DTYPES}


KEEPS_ANY = dtype_rule(lambda dtype: dtype)
"""Takes every dtype and keeps it (shape ops)."""
KEEPS_NUMBERS = dtype_rule(lambda dtype: None if dtype == "bool" else dtype)
"""Takes floats and integers, not bools (torch has no bool kernel), and keeps their dtype."""
KEEPS_FLOATS = dtype_rule(lambda dtype: dtype if dtype in FLOAT_DTYPES else None)
"""Takes floating-point inputs only, and keeps their dtype."""
KEEPS_FLOATS_ELSE_FLOAT32 = dtype_rule(lambda dtype: dtype if dtype in FLOAT_DTYPES else "float32")
"""Takes every dtype, keeping floats and making integers and bools float32 (sigmoid, true division)."""
FLOAT32_ONLY = dtype_rule(lambda dtype: "float32" if dtype == "float32" else None)
"""Takes float32 only (a module holding float32 weights)."""
KEEPS_NORM_FLOATS = dtype_rule(lambda dtype: dtype if dtype in ("float32", "float16", "bfloat16") else None)
"""float32, and the half precisions that torch's norms take with float32 weights."""
