"""Budgets: limits a spec declares on its parameters, MACs per sample and training-step memory, which
`check` enforces (E0408 at the budget that is exceeded).

    budgets: {params: 12M, macs: 2.5G, train_memory: {batch: 64, limit: 8GiB}}

Counts take SI suffixes (K, M, G, T: powers of 1000); memory takes bytes with B, KB, MB, GB, TB
(powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024).
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from . import costs
from .diagnostics import Diagnostic
from .ir import TypedGraph
from .load import Document

_COUNT = r"^\s*[0-9]{1,18}(\.[0-9]+)?\s*[KMGT]?\s*$"
_BYTES = r"^\s*[0-9]{1,18}(\.[0-9]+)?\s*([KMGT]i?B|B)\s*$"
_SCALE = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}

_COUNT_TEXT = {"type": "string", "pattern": _COUNT, "title": "a count such as 12M or 2.5G (at most 18 digits before the point)"}
_BYTES_TEXT = {"type": "string", "pattern": _BYTES, "title": "an amount such as 8GiB or 1.5GB (at most 18 digits before the point)"}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": "limits check enforces: params, MACs per sample, the estimated memory of one training step",
    "properties": {
        "params": {"anyOf": [{"type": "integer", "minimum": 0}, _COUNT_TEXT], "description": "e.g. 12M"},
        "macs": {"anyOf": [{"type": "integer", "minimum": 0}, _COUNT_TEXT], "description": "e.g. 2.5G"},
        "train_memory": {
            "type": "object",
            "additionalProperties": False,
            "required": ["batch", "limit"],
            "properties": {
                "batch": {"type": "integer", "minimum": 1},
                "limit": {"anyOf": [{"type": "integer", "minimum": 0}, _BYTES_TEXT], "description": "e.g. 8GiB"},
            },
        },
    },
}


def count(value: int | str) -> int:
    """`12M` → 12000000, exactly."""
    if isinstance(value, int):
        return value
    text = value.strip()
    suffix = text[-1] if text[-1] in _SCALE else ""
    return _exact(text[: len(text) - len(suffix)], _SCALE[suffix])


def size_in_bytes(value: int | str) -> int:
    """`8GiB` → 8589934592, `1.5 GB` → 1500000000, exactly."""
    if isinstance(value, int):
        return value
    number, unit = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]i?)?B\s*", value).groups()
    unit = unit or ""
    return _exact(number, _BINARY.get(unit) or _SCALE[unit])


def _exact(number: str, scale: int) -> int:
    """`number` (at most 18 digits, perhaps a fraction, as the schema says) times `scale`, rounded; the
    fraction is read to 40 digits (Python converts at most 4,300, and no budget needs more)."""
    whole, _, fraction = number.strip().partition(".")
    return round(Fraction(f"{whole}.{fraction[:40] or '0'}") * scale)


def show_bytes(value: int) -> str:
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        if value >= _BINARY[unit[:2]]:
            return f"{value / _BINARY[unit[:2]]:.1f} {unit}"
    return f"{value} B"


def check_budgets(document: Document, graph: TypedGraph) -> list[Diagnostic]:
    """E0408 for every budget `graph` exceeds (the spec's schema-valid `budgets` section)."""
    budgets = document.data.get("budgets") or {}
    found = []
    if "params" in budgets and graph.total_params > (limit := count(budgets["params"])):
        message = f"the model has {graph.total_params:,} parameters, over its budget of {budgets['params']} ({limit:,})"
        found.append(Diagnostic("E0408", message, document.span(("budgets", "params"))))
    if "macs" in budgets and (macs := costs.macs(graph)) > (limit := count(budgets["macs"])):
        where = " at the sizes' defaults" if graph.sizes else ""
        message = f"the model takes {macs:,} MACs per sample{where}, over its budget of {budgets['macs']} ({limit:,})"
        found.append(Diagnostic("E0408", message, document.span(("budgets", "macs"))))
    if "train_memory" in budgets:
        batch, limit = budgets["train_memory"]["batch"], size_in_bytes(budgets["train_memory"]["limit"])
        train = document.data.get("train")
        memory = costs.train_memory(graph, batch, train.get("optimizer") if isinstance(train, dict) else None)
        if memory.total > limit:
            parts = ", ".join(
                f"{name} {show_bytes(getattr(memory, name))}" for name in ("weights", "gradients", "optimizer", "activations")
            )
            needs = f"one training step at batch {batch} needs about {show_bytes(memory.total)} ({parts})"
            message = f"{needs}, over its budget of {show_bytes(limit)}"
            hint = "the estimate counts weights, gradients, optimizer state and the activations autograd keeps"
            found.append(Diagnostic("E0408", message, document.span(("budgets", "train_memory", "limit")), hint))
    return found
