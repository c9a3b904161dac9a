"""Shared fixtures: where things are, and the test plugin on the import path."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
PLUGINS = ROOT / "tests" / "plugins"

if str(PLUGINS) not in sys.path:
    sys.path.insert(0, str(PLUGINS))


@pytest.fixture
def write_spec(tmp_path: Path):
    """Write spec text to a file and return its path."""

    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


def check_fx_shapes(model, typed, batch: int) -> int:
    """Every fx node that holds a typed node's value has the inferred shape (batch prepended where the
    value has a batch dimension) and dtype; returns how many were compared."""
    from nncompile.compiler.dims import is_symbolic
    from nncompile.compiler.emit import LAYER_KEY

    checked = 0
    for node in model.graph.nodes:
        key = node.meta.get(LAYER_KEY)
        if key is None:
            continue
        name, _, index = key.rpartition(".") if key not in typed.nodes else (key, "", "")
        value = typed.nodes[name].outputs[int(index) if index else 0]
        if not is_symbolic(value.shape):
            assert tuple(node.meta["tensor_meta"].shape) == ((batch,) if value.batched else ()) + tuple(value.shape), key
        assert str(node.meta["tensor_meta"].dtype).removeprefix("torch.") == value.dtype, key
        checked += 1
    return checked
