"""The export table (`compiler/targets.py`) is true: every op's sample, and the constructs beside the
table's limits, exported to TorchScript, torch.export and ONNX at symbolic and at fixed sizes, fail
exactly where `check --target` says they would."""

from __future__ import annotations

import warnings

import pytest
import torch
from nncompile.compiler.emit import example_inputs
from nncompile.compiler.export import ExportError, export
from nncompile.compiler.ops import BUILTIN
from nncompile.compiler.targets import TARGETS, export_limits
from op_samples import EDGES, SAMPLES, sample_spec

from nncompile import compiler
from nncompile.cli import main

SUFFIX = {"torchscript": ".pt", "export": ".pt2", "onnx": ".onnx"}


def test_every_builtin_op_has_a_sample():
    assert set(SAMPLES) == set(BUILTIN.names)


@pytest.mark.parametrize("fixed", [False, True], ids=["symbolic", "fixed"])
@pytest.mark.parametrize("name", [*SAMPLES, *EDGES])
def test_check_target_predicts_the_export(name, fixed, write_spec, tmp_path):
    path = write_spec(sample_spec(name))
    overrides = {"T": 16} if fixed else {}
    analysis = compiler.analyze(path, overrides)
    assert analysis.ok, analysis.diagnostics
    model = compiler.build(path, **overrides)
    for target in TARGETS:
        predicted = export_limits(analysis.graph, target)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                export(model, example_inputs(model), tmp_path / f"model{SUFFIX[target]}")
            exported = True
        except (ExportError, Exception) as error:  # torch's exporters raise many kinds
            exported, failure = False, error
        assert exported == (not predicted), f"{target}: predicted {predicted}, " + ("exported" if exported else f"failed: {failure}")


def test_check_target_reports_located_errors(write_spec, capsys):
    path = write_spec(sample_spec("adaptive2d"))
    assert main(["check", str(path), "--target", "torchscript", "--target", "export"]) == 0
    assert main(["check", str(path), "--target", "onnx"]) == 1
    out = capsys.readouterr().out
    assert "spec.yaml:7:5: error[E0409]: layer '0' (adaptive_avgpool2d) would not export to ONNX (.onnx): adaptive pooling" in out
    assert main(["check", str(path), "--target", "onnx", "--set", "T=16"]) == 0


def test_an_exporter_that_refuses_a_model_is_a_failed_export_not_a_crash(tmp_path):
    class Unscriptable(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(x.numpy() * 2)

    with pytest.raises(ExportError, match="torchscript cannot export this model"):
        export(Unscriptable(), (torch.randn(2, 3),), tmp_path / "m.pt")


def test_integers_given_for_real_parameters_script(write_spec, tmp_path):
    """`alpha: 1` is a float to TorchScript (an int there once made `build -o x.pt` fail)."""
    spec = write_spec("nncompile: 1\ninputs: {x: [4]}\nlayers:\n  - {op: elu, alpha: 1}\n  - {op: dropout, p: 0}\n")
    assert main(["build", str(spec), "-o", str(tmp_path / "m.pt")]) == 0
