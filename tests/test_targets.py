"""Every op's export limits (`OpDef.export_limits`) are true: every op's sample, and the constructs
beside the limits, exported to every target (`ExportTarget`) at symbolic and at fixed sizes, fail
exactly where `check --target` says they would."""

from __future__ import annotations

import warnings

import pytest
import torch
from nncompile.compiler import export as exporter
from nncompile.compiler.emit import example_inputs
from nncompile.compiler.export import ExportError, export
from nncompile.compiler.export_limits import export_limits
from nncompile.compiler.targets import SUFFIXES, TARGETS, ExportTarget
from op_samples import EDGES, SAMPLES, sample_spec

from nncompile import compiler
from nncompile.cli import main


def test_every_target_is_a_choice_a_suffix_and_an_exporter():
    """A target is named once, in ExportTarget: it is a `--target` choice, the suffix build writes it
    to (one suffix each), and the exporter export runs."""
    assert tuple(target.value for target in ExportTarget) == TARGETS
    assert list(SUFFIXES.values()) == list(ExportTarget)
    assert set(exporter.EXPORTERS) == set(ExportTarget)


@pytest.mark.parametrize("fixed", [False, True], ids=["symbolic", "fixed"])
@pytest.mark.parametrize("name", [*SAMPLES, *EDGES])
def test_check_target_predicts_the_export(name, fixed, write_spec, tmp_path):
    path = write_spec(sample_spec(name))
    overrides = {"T": 16} if fixed else {}
    analysis = compiler.analyze(path, overrides)
    assert analysis.ok, analysis.diagnostics
    model = compiler.build(path, **overrides)
    for target in ExportTarget:
        predicted = export_limits(analysis.graph, target)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                export(model, example_inputs(model), tmp_path / f"model{target.suffix}")
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

    with pytest.raises(ExportError, match="TorchScript cannot export this model"):
        export(Unscriptable(), (torch.randn(2, 3),), tmp_path / "m.pt")


def test_integers_given_for_real_parameters_script(write_spec, tmp_path):
    """`alpha: 1` is a float to TorchScript (an int there once made `build -o x.pt` fail)."""
    spec = write_spec("nncompile: 1\ninputs: {x: [4]}\nlayers:\n  - {op: elu, alpha: 1}\n  - {op: dropout, p: 0}\n")
    assert main(["build", str(spec), "-o", str(tmp_path / "m.pt")]) == 0


PLUGIN = """
from nncompile.compiler.ops import FunctionEmit, OpDef
from nncompile.compiler.targets import ExportLimit, ExportTarget

NNCOMPILE_OPS = [
    OpDef(
        name="doubled",
        doc="x * 2",
        infer=lambda call: call.x,
        emit=FunctionEmit("operator:mul", operand=lambda call: 2),
        export_limits=(ExportLimit(ExportTarget.ONNX, lambda call: call.x.rank > 1, "doubled takes vectors to ONNX"),),
    ),
    OpDef(name="halved", doc="x / 2", infer=lambda call: call.x, emit=FunctionEmit("operator:truediv", operand=lambda call: 2)),
]
"""


def test_a_plugin_ops_declared_limits_are_checked_and_undeclared_ones_none(write_spec):
    """A plugin op may declare export limits as a builtin does; one that declares none has none known."""
    plugin = write_spec(PLUGIN, "doubling.py")
    spec = write_spec("nncompile: 1\ninputs: {x: [3, 4]}\nlayers:\n  - {op: doubled}\n  - {op: halved}\n")
    analysis = compiler.analyze(spec, plugins=(str(plugin),))
    assert analysis.ok, analysis.diagnostics
    [refusal] = export_limits(analysis.graph, "onnx", analysis.registry)
    assert refusal.message == "layer '0' (doubled) would not export to ONNX (.onnx): doubled takes vectors to ONNX"
    assert export_limits(analysis.graph, "torchscript", analysis.registry) == []
