"""The `nncompile` command: exit codes, torch-free checking, and each subcommand's output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SPECS

from compiler.schema import shipped
from runtime.cli import main

MNIST = str(ROOT / "specs" / "mnist_mlp.yaml")


def test_check_never_imports_torch():
    code = (
        "import sys; from runtime.cli import main; rc = main(['check', *sys.argv[1:]]); "
        "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)"
    )
    result = subprocess.run([sys.executable, "-c", code, *map(str, SPECS)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("argv", "status"),
    [
        (["check", MNIST], 0),
        (["check", "no/such/spec.yaml"], 2),
        (["check", MNIST, "--set", "nope=1"], 2),
        (["check", MNIST, "--set", "hidden=wide"], 2),
        (["check", MNIST, "--set", "hidden"], 2),
        (["check", MNIST, "--plugin", "no_such_plugin_module"], 2),
        (["check", str(ROOT)], 2),
    ],
)
def test_exit_status(argv: list[str], status: int, capsys):
    assert main(argv) == status
    assert "Traceback" not in capsys.readouterr().err


def test_bad_flag_is_a_usage_error():
    with pytest.raises(SystemExit) as exit_info:
        main(["check", "--no-such-flag", MNIST])
    assert exit_info.value.code == 2


def test_unknown_override_suggests_the_parameter(capsys):
    assert main(["check", MNIST, "--set", "num_clases=3"]) == 2
    assert "did you mean 'num_classes'?" in capsys.readouterr().err


def test_override_reaches_the_model(capsys):
    assert main(["summary", MNIST, "--set", "hidden=64", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [row["output"] for row in report["layers"]][-2] == [64]


def test_summary_totals_resnet18(capsys):
    assert main(["summary", str(ROOT / "specs" / "resnet18.yaml")]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "resnet18: 11,689,512 parameters, 1.814 GMACs per sample (image [3, 224, 224])"


def test_schema_prints_the_shipped_schema(capsys):
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == shipped()


@pytest.mark.parametrize("suffix", [".pt", ".pt2", ".onnx"])
def test_build_writes_a_verified_export(suffix: str, tmp_path: Path, capsys):
    pytest.importorskip("onnxruntime") if suffix == ".onnx" else None
    output = tmp_path / f"model{suffix}"
    assert main(["build", MNIST, "-o", str(output), "--set", "hidden=32"]) == 0
    assert output.stat().st_size > 0
    assert "verified" in capsys.readouterr().out


def test_build_rejects_an_unknown_format(tmp_path: Path, capsys):
    assert main(["build", MNIST, "-o", str(tmp_path / "model.h5")]) == 2
    assert "unknown output format" in capsys.readouterr().err


def test_console_script_runs(tmp_path: Path):
    script = Path(sys.executable).with_name("nncompile")
    if not script.exists():
        pytest.skip("nncompile is not installed as a console script here")
    result = subprocess.run([str(script), "check", MNIST], capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})
    assert result.returncode == 0, result.stderr
