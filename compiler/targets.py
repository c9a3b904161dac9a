"""Export targets, named once, and the limits an op declares: what would not export to a target, known without torch.

`ExportTarget` is the one list of formats: the `--target` names (`TARGETS`), the file suffixes
(`SUFFIXES`), the names messages use, and the exporter `compiler.export` runs for each. Every builtin
op exports to every target at fixed sizes, and most do with symbolic sizes too; the exceptions are
each op's own `OpDef.export_limits`, found (and kept true by `tests/test_targets.py`) by exporting
every op's sample, at fixed and at symbolic sizes, to every target. A plugin op declares none unless
it says so: its exports are not checked before trying. `compiler.export_limits` applies them to a graph.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .ops import Call


class ExportTarget(enum.Enum):
    """A format `build` writes: its value is its `--target` name, with its file suffix and its title."""

    TORCHSCRIPT = ("torchscript", ".pt", "TorchScript")
    EXPORT = ("export", ".pt2", "torch.export")
    ONNX = ("onnx", ".onnx", "ONNX")

    def __new__(cls, name: str, suffix: str, title: str) -> ExportTarget:
        target = object.__new__(cls)
        target._value_ = name
        target.suffix, target.title = suffix, title
        return target

    @property
    def described(self) -> str:
        """`torch.export (.pt2)`: how a message names it."""
        return f"{self.title} ({self.suffix})"


TARGETS = tuple(target.value for target in ExportTarget)
"""The `--target` choices: torchscript, export, onnx."""
SUFFIXES = {target.suffix: target for target in ExportTarget}
"""The target each output suffix means: .pt, .pt2, .onnx."""


@dataclass(frozen=True)
class ExportLimit:
    """A layer of the op for which `applies` holds (given its arguments and input types) does not
    export to `target`, for `reason`."""

    target: ExportTarget
    applies: Callable[[Call], bool]
    reason: str
