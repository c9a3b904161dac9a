"""The check path, stage by stage: load → validate → resolve → infer. No torch here."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import expr
from .budgets import check_budgets
from .diagnostics import Diagnostic, UsageError, has_errors, merged_copies, silenced
from .infer import MAX_PARAMS, TypedGraph, infer
from .load import Document, load_file
from .ops import Registry
from .overlay import is_train_override, merge_train
from .plugins import registry_with
from .resolve import resolve
from .validate import validate


@dataclass(frozen=True)
class Analysis:
    """What the check path learned about one spec."""

    document: Document | None
    graph: TypedGraph | None
    diagnostics: list[Diagnostic]
    registry: Registry

    @property
    def ok(self) -> bool:
        return self.graph is not None and not has_errors(self.diagnostics)


def analyze(
    path: str | Path,
    overrides: Mapping[str, Any] | None = None,
    plugins: tuple[str, ...] = (),
    config: str | Path | None = None,
    max_params: int = MAX_PARAMS,
) -> Analysis:
    """Run every torch-free stage; stop after the first stage that reports errors.

    `config` is a file holding a train section, merged over the spec's; overrides named `train.…`
    go into the train section, the others set model parameters.
    Raises UsageError for a missing file, a bad override or a broken plugin.
    """
    with _collector_paused(), expr.metered():
        return _analyze(path, overrides or {}, plugins, config, max_params)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The cycle collector off while a spec is analysed: the stages allocate many small objects and
    few cycles, and its passes over the growing heap cost as much as the analysis on large specs
    (10,000 layers: 1.7 s with it, 1.0 s without). Reference counting still frees what is dropped."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _analyze(path: str | Path, overrides: Mapping[str, Any], plugins: tuple[str, ...], config, max_params: int) -> Analysis:
    registry = registry_with(tuple(plugins))
    document, diagnostics = _load(path)
    if document is None:
        return Analysis(None, None, diagnostics, registry)
    train = None
    if config is not None:
        train, diagnostics = _load(config)
        if train is None:
            return Analysis(document, None, diagnostics, registry)
    document = merge_train(document, train, overrides)
    diagnostics = validate(document, registry)
    if has_errors(diagnostics):
        return Analysis(document, None, diagnostics, registry)
    model_overrides = {key: value for key, value in overrides.items() if not is_train_override(key)}
    graph, diagnostics = resolve(document, registry, model_overrides)
    typed, inferred = infer(graph, registry, max_params) if graph is not None else (None, [])
    if typed is not None:
        inferred += check_budgets(document, typed)
    return Analysis(document, typed, merged_copies(silenced(diagnostics + inferred, document.path, document.text)), registry)


def _load(path: str | Path) -> tuple[Document | None, list[Diagnostic]]:
    try:
        return load_file(path)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except OSError as error:  # a directory, a device or FIFO, permissions, a symlink loop, a name too long
        raise UsageError(f"{path}: {error.strerror or error}") from None
