"""Overlay: a `--config` file and `--set train.…` overrides merged over a spec's `train:` section.

The merged document keeps each value's source location, so a diagnostic points at the file (or
the `--set` flag) that set the value.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

import yaml

from .diagnostics import Span
from .load import Document, JsonPath, load_text

SET_FILE = "--set"
SECTION = "train"


def overlay(base: Document, top: Document, at: JsonPath) -> Document:
    """`base` with `top`'s data merged in at `at`: mappings merge key by key, anything else replaces."""
    data = copy.deepcopy(base.data)
    spans, key_spans = dict(base.spans), dict(base.key_spans)
    parent = data
    for depth, key in enumerate(at[:-1]):
        if not isinstance(parent.get(key), dict):
            parent[key] = {}
            spans[at[: depth + 1]] = top.span(())
        parent = parent[key]
    _merge(parent, at[-1], top.data, at, spans, key_spans)
    spans.update({(*at, *path): span for path, span in top.spans.items()})
    key_spans.update({(*at, *path): span for path, span in top.key_spans.items()})
    sources = {**base.sources, top.path: top.text, **top.sources}
    return dataclasses.replace(base, data=data, spans=spans, key_spans=key_spans, sources=sources)


def _merge(parent: dict, key: str, value: Any, path: JsonPath, spans: dict, key_spans: dict) -> None:
    if isinstance(parent.get(key), dict) and isinstance(value, dict):
        for child, child_value in value.items():
            _merge(parent[key], child, child_value, (*path, child), spans, key_spans)
        return
    for table in (spans, key_spans):
        for stale in [p for p in table if p[: len(path)] == path]:
            del table[stale]
    parent[key] = copy.deepcopy(value)


def flag_documents(overrides: Mapping[str, Any]) -> list[tuple[JsonPath, Document]]:
    """Each `--set a.b=value` flag as a document holding its value, located on its own line of a
    pseudo-file named `--set`."""
    lines = [f"{key}={_flow(value)}" for key, value in overrides.items()]
    text = "\n".join(lines) + "\n"
    documents = []
    for number, (key, line) in enumerate(zip(overrides, lines), 1):
        shift = len(key) + 1
        parsed, _ = load_text(line[shift:], SET_FILE)
        assert parsed is not None, "a dumped YAML value always loads"
        spans = {path: Span(SET_FILE, number, s.col + shift, number, (s.end_col or s.col) + shift) for path, s in parsed.spans.items()}
        flag = Document(SET_FILE, text, parsed.data, spans, {(): Span(SET_FILE, number, 1, number, shift)})
        documents.append((tuple(key.split(".")), flag))
    return documents


def _flow(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()


def is_train_override(key: str) -> bool:
    return key.split(".", 1)[0] == SECTION and "." in key


def merge_train(spec: Document, config: Document | None, overrides: Mapping[str, Any]) -> Document:
    """The spec with its train section overlaid by `config` (a train section on its own), then by
    the `train.…` overrides."""
    if not isinstance(spec.data, dict):
        return spec  # not a spec at all: validation says so
    document = spec if config is None else overlay(spec, config, (SECTION,))
    for path, flag in flag_documents({key: value for key, value in overrides.items() if is_train_override(key)}):
        document = overlay(document, flag, path)
    return document
