"""The op registry: every op defined once, each fact of it in its `core.OpDef` in the op's own file
(`tests/test_op_registry.py` fails for a builtin op missing one), looked up by name."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator

from . import activation, attention, conv, dense, merge, padding, pool, tensor
from .core import REQUIRED, Call, FunctionEmit, ModuleEmit, OpDef, Param, ShapeError, TensorEmit, TensorType, resolve_target
from .sample import DtypeCase, Sample

__all__ = [
    "BUILTIN",
    "REQUIRED",
    "Call",
    "DtypeCase",
    "FunctionEmit",
    "ModuleEmit",
    "OpDef",
    "Param",
    "Registry",
    "Sample",
    "ShapeError",
    "TensorEmit",
    "TensorType",
    "plugin_failure",
    "resolve_target",
]


class Registry:
    """An immutable set of ops by name; `extend` returns a new registry (plugins never mutate the builtins)."""

    def __init__(self, ops: Iterable[OpDef]):
        self._ops: dict[str, OpDef] = {}
        for op in ops:
            if op.name in self._ops:
                raise ValueError(f"op '{op.name}' is defined twice")
            self._ops[op.name] = op

    def extend(self, ops: Iterable[OpDef]) -> Registry:
        return Registry([*self._ops.values(), *ops])

    def get(self, name: str) -> OpDef | None:
        return self._ops.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._ops

    def __iter__(self) -> Iterator[OpDef]:
        return iter(self._ops.values())

    @property
    def names(self) -> list[str]:
        return list(self._ops)

    @functools.cached_property
    def activations(self) -> list[str]:
        """Activation ops usable in the `activation:` shorthand (those with no required parameter)."""
        return [op.name for op in self if op.category == "activation" and not any(p.required for p in op.params)]


BUILTIN = Registry([*conv.OPS, *pool.OPS, *dense.OPS, *activation.OPS, *tensor.OPS, *padding.OPS, *merge.OPS, *attention.OPS])


def plugin_failure(op: OpDef, error: Exception, what: str = "") -> str | None:
    """The message for a plugin op's code that raised `error` (while doing `what`: ' to build'); None
    for a builtin op, whose failure is nncompile's own bug (an internal error)."""
    if BUILTIN.get(op.name) is op:
        return None
    return f"the plugin op '{op.name}' failed{what}: {type(error).__name__}: {str(error)[:300]}"
