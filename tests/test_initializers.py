"""Initialisers of learnable tensors: one table (compiler.initializers) gives the schema, the builder's
call and the ejected file's text; each is checked against torch, in the built model and in the
ejected file."""

from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path

import pytest
import torch
from nncompile.compiler import analyze, build
from nncompile.compiler.emit import resolve_target
from nncompile.compiler.initializers import INITIALIZERS

from nncompile.cli import main

TRUNCATED = "{type: trunc_normal, mean: 1, std: 0.02}"


def _spec(write_spec, init: str, shape: str = "[64, 64]") -> Path:
    return write_spec(f"nncompile: 1\nname: m\ninputs: {{x: [64]}}\nlayers:\n  - {{id: p, op: parameter, shape: {shape}, init: {init}}}\n")


def _ejected_tensor(spec: Path, folder: Path) -> torch.Tensor:
    file = folder / "ejected_init.py"
    assert main(["build", str(spec), "-o", str(file)]) == 0
    loader = importlib.util.spec_from_file_location("ejected_init", file)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return module.M().p.detach()


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_each_initializer_calls_a_torch_function_that_takes_its_arguments(name: str):
    initializer = INITIALIZERS[name]
    parameters = inspect.signature(resolve_target(initializer.target)).parameters
    assert next(iter(parameters)) == "tensor"
    assert {argument.keyword for argument in initializer.arguments} <= set(parameters)


def test_trunc_normal_truncates_around_its_mean_in_the_built_model_and_the_ejected_file(write_spec, tmp_path: Path, capsys):
    """mean 1, std 0.02: the default bounds are mean ± 2·std (they were ±2·std around 0, so every
    value was cut to about 0.04)."""
    spec = _spec(write_spec, TRUNCATED)
    torch.manual_seed(0)
    for values in (build(spec).p.detach(), _ejected_tensor(spec, tmp_path)):
        assert values.min() >= 0.96 and values.max() <= 1.04
        assert abs(values.mean().item() - 1.0) < 0.002
        assert 0.015 < values.std().item() < 0.02  # a normal's std, less what the bounds cut off


@pytest.mark.parametrize(
    ("init", "expected"),
    [
        ("zeros", lambda t: bool((t == 0).all())),
        ("ones", lambda t: bool((t == 1).all())),
        ("arange", lambda t: torch.equal(t.flatten(), torch.arange(t.numel(), dtype=t.dtype))),
        ("{type: constant, value: 0.5}", lambda t: bool((t == 0.5).all())),
        ("{type: normal, mean: 3, std: 0.1}", lambda t: abs(t.mean().item() - 3) < 0.01 and abs(t.std().item() - 0.1) < 0.01),
        ("{type: uniform, low: 2, high: 3}", lambda t: t.min() >= 2 and t.max() <= 3 and abs(t.mean().item() - 2.5) < 0.02),
        ("{type: trunc_normal, mean: -1, std: 1, a: -1.5, b: 0}", lambda t: t.min() >= -1.5 and t.max() <= 0),
        ("kaiming_uniform", lambda t: t.abs().max() <= 1 / 64**0.5 and t.std().item() > 0.05),
    ],
)
def test_the_built_model_and_the_ejected_file_fill_a_tensor_alike(write_spec, tmp_path: Path, capsys, init: str, expected):
    """Both make the same call: with one seed, the same values."""
    spec = _spec(write_spec, init)
    torch.manual_seed(0)
    built = build(spec).p.detach()
    torch.manual_seed(0)
    ejected = _ejected_tensor(spec, tmp_path)
    assert expected(built)
    assert torch.equal(built, ejected)


@pytest.mark.parametrize(
    ("init", "shape", "message"),
    [
        ("constant", "[4]", "'init' must be one of 'zeros', 'ones', 'arange', 'kaiming_uniform', 'normal', 'trunc_normal', 'uniform'"),
        ("kaiming_uniform", "[4]", "kaiming_uniform needs a tensor of 2 or more dims"),
        ("{type: uniform, low: 1, high: 0}", "[4]", "uniform needs low <= high"),
        ("{type: trunc_normal, a: 1, b: -1}", "[4]", "trunc_normal needs a < b"),
        ("{type: trunc_normal, mean: 10, std: 1, a: -1, b: 1}", "[4]", "trunc_normal's mean 10 lies more than 2 std from its bounds"),
    ],
)
def test_initializers_that_would_fail_or_be_wrong_are_refused_at_check(write_spec, init: str, shape: str, message: str):
    """They passed check, then build crashed (a constant without a value, kaiming on a vector, reversed
    bounds) or filled wrong values (torch only warns about a mean far outside the bounds)."""
    analysis = analyze(_spec(write_spec, init, shape))
    errors = [d for d in analysis.diagnostics if d.is_error]
    assert len(errors) == 1 and message in errors[0].message and errors[0].span.line == 5


def test_the_ejected_text_is_the_builders_call(write_spec, tmp_path: Path, capsys):
    spec = _spec(write_spec, TRUNCATED, "[1, 8]")
    file = tmp_path / "m.py"
    assert main(["build", str(spec), "-o", str(file)]) == 0
    text = re.sub(r"\s+", " ", file.read_text())
    assert "nn.Parameter( nn.init.trunc_normal_(torch.empty(1, 8), mean=1, std=0.02, a=0.96, b=1.04) )" in text
