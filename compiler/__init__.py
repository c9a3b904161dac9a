"""nncompile's compiler: YAML model specs → checked, shape-inferred graphs → torch.fx modules.

`check` never imports torch; `build` does (through `compiler.emit`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .diagnostics import Diagnostic, SpecError, UsageError
from .pipeline import Analysis, analyze

if TYPE_CHECKING:
    import torch

__all__ = ["Analysis", "Diagnostic", "SpecError", "UsageError", "analyze", "build", "check"]


def check(path: str | Path, *, plugins: tuple[str, ...] = (), **overrides: Any) -> list[Diagnostic]:
    """All diagnostics for the spec at `path` (empty when it is clean)."""
    return analyze(path, overrides, plugins).diagnostics


def build(path: str | Path, *, plugins: tuple[str, ...] = (), **overrides: Any) -> torch.fx.GraphModule:
    """Compile the spec at `path` into a torch.fx GraphModule; raises SpecError if it has errors."""
    analysis = analyze(path, overrides, plugins)
    if not analysis.ok:
        raise SpecError(analysis.diagnostics)
    from .emit import emit

    return emit(analysis.graph, analysis.registry)
