"""Custom ops: `--plugin MODULE`, a plugin file, and installed packages' entry points."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import PLUGINS, ROOT
from nncompile.compiler.diagnostics import UsageError
from nncompile.compiler.plugins import registry_with

from nncompile import compiler

SPEC = ROOT / "tests" / "specs" / "normalized_mlp.yaml"


def test_plugin_spec_needs_the_plugin():
    codes = [d.code for d in compiler.check(SPEC)]
    assert codes == ["E0301", "E0301"]


def test_plugin_op_builds_the_seed_custom_linear():
    model = compiler.build(SPEC, plugins=("normlinear",))
    x = torch.randn(3, 1, 28, 28)
    fc1, fc2 = model.fc1, model.fc2
    hidden = torch.relu(torch.nn.functional.linear(x.flatten(1), torch.nn.functional.normalize(fc1.weight, dim=1), fc1.bias))
    expected = torch.nn.functional.linear(hidden, torch.nn.functional.normalize(fc2.weight, dim=1), fc2.bias)
    assert torch.allclose(model(x), expected, atol=1e-6)
    assert compiler.analyze(SPEC, plugins=("normlinear",)).graph.total_params == sum(p.numel() for p in model.parameters())


def test_plugin_from_a_file_path():
    assert "normalized_linear" in registry_with((str(PLUGINS / "normlinear" / "__init__.py"),))


def test_installed_plugin_is_found_through_its_entry_point(tmp_path: Path, monkeypatch):
    dist = tmp_path / "normlinear_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: normlinear-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[nncompile.ops]\nnormalized_linear = normlinear:NNCOMPILE_OPS\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry_with.cache_clear()
    try:
        assert compiler.check(SPEC) == []
    finally:
        registry_with.cache_clear()


def test_plugin_clashing_with_a_builtin_is_refused(tmp_path: Path):
    clash = tmp_path / "clash.py"
    clash.write_text("from nncompile.compiler.ops import BUILTIN\nNNCOMPILE_OPS = [BUILTIN.get('linear')]\n")
    with pytest.raises(UsageError, match="defined twice"):
        registry_with((str(clash),))


def test_broken_plugin_is_a_usage_error(tmp_path: Path):
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(UsageError, match="boom"):
        registry_with((str(broken),))


def test_a_plugin_that_exits_at_import_is_a_usage_error(tmp_path: Path):
    plugin = tmp_path / "exits.py"
    plugin.write_text("import sys\nsys.exit(0)\n")
    with pytest.raises(UsageError, match="SystemExit"):
        registry_with((str(plugin),))
