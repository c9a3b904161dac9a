"""Every shipped spec: checks clean, builds, trains (gradients reach every parameter), and its
TorchScript export reloads in a clean process that cannot import nncompile."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import SPECS, check_fx_shapes
from nncompile.compiler.emit import example_inputs
from nncompile.compiler.export import export
from torch.fx.passes.shape_prop import ShapeProp

from nncompile import compiler

CLEAN_PROCESS = """
import sys
sys.modules["nncompile"] = None  # nncompile must not be needed to run what it exported
import torch
model = torch.jit.load(sys.argv[1])
inputs, expected = torch.load(sys.argv[2])
with torch.no_grad():
    got = model(*inputs)
got = got if isinstance(got, tuple) else (got,)
assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(got, expected)), "outputs differ"
print("ok")
"""

HEAVY = {"resnet50"}
"""Specs whose export and reload take over 5 s of CPU (marked slow)."""


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_spec_is_clean_and_editor_ready(spec: Path):
    assert spec.read_text().startswith("# yaml-language-server: $schema=../compiler/nncompile.schema.json\n")
    assert compiler.check(spec) == []


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_forward_backward_and_shapes(spec: Path):
    analysis = compiler.analyze(spec)
    model = compiler.build(spec)
    inputs = example_inputs(model)
    ShapeProp(model).propagate(*inputs)
    values = sum(len(n.outputs) for n in analysis.graph.nodes.values())
    assert check_fx_shapes(model, analysis.graph, batch=2) == values
    output = model(*inputs)
    output.float().square().mean().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert not missing


@pytest.mark.parametrize("spec", [pytest.param(s, marks=pytest.mark.slow) if s.stem in HEAVY else s for s in SPECS], ids=lambda p: p.stem)
def test_torchscript_reloads_in_a_clean_process(spec: Path, tmp_path: Path):
    model = compiler.build(spec).eval()
    inputs = example_inputs(model)
    with torch.no_grad():
        expected = model(*inputs)
    export(model, inputs, tmp_path / "model.pt")
    torch.save((inputs, expected if isinstance(expected, tuple) else (expected,)), tmp_path / "io.pt")
    result = subprocess.run(
        [sys.executable, "-c", CLEAN_PROCESS, str(tmp_path / "model.pt"), str(tmp_path / "io.pt")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
