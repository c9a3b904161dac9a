"""Plugins: extra ops from installed packages (entry-point group `nncompile.ops`) or `--plugin MODULE`.

A plugin exposes a sequence of `OpDef`s: the entry point's object itself, or a module's
`NNCOMPILE_OPS`. Plugins extend a copy of the builtin registry; a spec can never load one.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
from collections.abc import Iterable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from .diagnostics import UsageError
from .ops import BUILTIN, OpDef, Registry

ENTRY_POINT_GROUP = "nncompile.ops"
MODULE_ATTRIBUTE = "NNCOMPILE_OPS"


@functools.lru_cache(maxsize=16)
def registry_with(plugins: tuple[str, ...] = (), installed: bool = True) -> Registry:
    """The builtin ops plus installed plugins (if `installed`) plus the named plugin modules."""
    ops: list[OpDef] = []
    if installed:
        for point in entry_points(group=ENTRY_POINT_GROUP):
            ops.extend(_ops_of(_guarded(point.load, f"plugin entry point '{point.name}'"), point.name))
    for name in plugins:
        module = _guarded(functools.partial(_import, name), f"plugin '{name}'")
        if not hasattr(module, MODULE_ATTRIBUTE):
            raise UsageError(f"plugin '{name}' defines no {MODULE_ATTRIBUTE}")
        ops.extend(_ops_of(getattr(module, MODULE_ATTRIBUTE), name))
    try:
        return BUILTIN.extend(ops)
    except ValueError as error:
        raise UsageError(f"plugins: {error}") from None


def _import(name: str) -> Any:
    """A module by name, or a `.py` file run as Python runs a script: its folder first on the import
    path, so the modules beside it (which its ops' targets may name) import too."""
    path = Path(name)
    if path.suffix != ".py":
        return importlib.import_module(name)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None or not path.is_file():
        raise ImportError(f"no such file: {name}")
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _guarded(load: Any, what: str) -> Any:
    try:
        return load()
    except (Exception, SystemExit) as error:  # a broken plugin (even one calling sys.exit) is reported plainly
        raise UsageError(f"{what} failed to load: {type(error).__name__}: {error}") from None


def _ops_of(value: Any, source: str) -> Iterable[OpDef]:
    ops = list(value) if isinstance(value, (list, tuple)) else [value]
    if not all(isinstance(op, OpDef) for op in ops):
        raise UsageError(f"plugin '{source}' must provide OpDef objects")
    return ops
