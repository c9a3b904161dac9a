"""The `nncompile` command: exit codes, torch-free checking, and each subcommand's output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SPECS
from nncompile.compiler.schema import shipped

from nncompile.cli import main

MNIST = str(ROOT / "specs" / "mnist_mlp.yaml")


def test_check_never_imports_torch():
    code = (
        "import sys; from nncompile.cli import main; rc = main(['check', *sys.argv[1:]]); "
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
        (["check", str(ROOT / "docs")], 2),
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


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_special_files_are_refused_without_reading_or_waiting(kind, tmp_path, capsys):
    path = tmp_path / "spec.yaml"
    if kind == "device":
        path.symlink_to("/dev/zero")
    else:
        os.mkfifo(path)
    assert main(["check", str(path)]) == 2
    assert "not a regular file" in capsys.readouterr().err


def test_check_reports_every_file_even_after_a_missing_one(capsys):
    assert main(["check", "no/such.yaml", MNIST, str(ROOT / "tests" / "bad_specs" / "cycle.yaml")]) == 2
    captured = capsys.readouterr()
    assert "no/such.yaml: no such file" in captured.err
    assert "cycle.yaml" in captured.out and "E0308" in captured.out
    assert "checked 2 spec(s), 1 not checked: 1 error(s)" in captured.err


def test_a_top_level_list_with_train_overrides_is_a_diagnostic(write_spec, capsys):
    assert main(["check", str(write_spec("- 1\n- 2\n")), "--set", "train.epochs=3"]) == 1
    assert "E0203" in capsys.readouterr().out


def test_a_plugin_rule_that_crashes_is_the_plugins_bug(write_spec, tmp_path, capsys):
    plugin = tmp_path / "broken_rule.py"
    plugin.write_text(
        "from nncompile.compiler.ops.core import ModuleEmit, OpDef\n"
        "def infer(call):\n    raise ValueError('oops')\n"
        "NNCOMPILE_OPS = [OpDef(name='broken', doc='', infer=infer, emit=ModuleEmit('torch.nn:Identity', lambda call: {}))]\n"
    )
    spec = write_spec("nncompile: 1\nname: t\ninputs: {x: [4]}\nlayers:\n  - {op: broken}\n")
    assert main(["check", str(spec), "--plugin", str(plugin)]) == 1
    out = capsys.readouterr().out
    assert "E0406" in out and "ValueError: oops" in out and "bug in the plugin" in out


def test_the_parameter_limit_can_be_raised(write_spec):
    spec = write_spec("nncompile: 1\nname: t\ninputs: {x: [1000]}\nlayers:\n  - {op: linear, out: 1000}\n")
    assert main(["check", str(spec), "--max-params", "1000"]) == 1
    assert main(["check", str(spec), "--max-params", "2000000"]) == 0


BAD = ROOT / "tests" / "bad_specs"


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nncompile", *argv], capture_output=True, text=True, cwd=ROOT)


def test_sarif_is_valid_sarif_2_1_0_with_a_rule_per_code():
    import jsonschema
    from nncompile.compiler.codes import CODES

    result = _run("check", str(BAD / "cycle.yaml"), str(BAD / "unknown_key.yaml"), MNIST, "--format", "sarif")
    assert result.returncode == 1
    log = json.loads(result.stdout)
    schema = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(log)
    run = log["runs"][0]
    assert [rule["id"] for rule in run["tool"]["driver"]["rules"]] == sorted(CODES)
    assert {r["ruleId"] for r in run["results"]} == {"E0308", "E0201"}
    region = run["results"][0]["locations"][0]["physicalLocation"]["region"]
    assert region["startLine"] >= 1 and region["startColumn"] >= 1 and "endColumn" in region


def test_github_annotations_are_one_escaped_command_per_diagnostic():
    import re

    result = _run("check", str(BAD / "newline_in_key.yaml"), str(BAD / "cycle.yaml"), "--format", "github")
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all(
        re.fullmatch(r"::(error|warning) file=[^:]+,line=\d+,col=\d+,endLine=\d+,endColumn=\d+,title=nncompile E\d{4}::.*", line)
        for line in lines
    )
    assert "\x1b" not in result.stdout and "pwned" in lines[0]


def test_json_is_a_list_of_documented_objects():
    result = _run("check", str(BAD / "cycle.yaml"), "--format", "json")
    [diagnostic] = json.loads(result.stdout)
    assert set(diagnostic) == {"code", "message", "span", "hint", "severity"}
    assert set(diagnostic["span"]) == {"file", "line", "col", "end_line", "end_col"} and diagnostic["severity"] == "error"


def test_select_and_ignore_choose_codes_and_the_exit_status_follows(write_spec):
    assert _run("check", str(BAD / "cycle.yaml"), "--ignore", "E03").returncode == 0
    assert _run("check", str(BAD / "cycle.yaml"), "--select", "E0308").returncode == 1
    assert _run("check", str(BAD / "cycle.yaml"), "--select", "W", "--format", "json").stdout.strip() == "[]"
    unused = write_spec("nncompile: 1\nname: t\ninputs: {x: [4], y: [4]}\nlayers:\n  - {op: relu, from: x}\n")
    codes = [d["code"] for d in json.loads(_run("check", str(unused), "--format", "json", "--select", "E0301,W").stdout)]
    assert codes == ["W0301"]
    assert json.loads(_run("check", str(unused), "--format", "json", "--ignore", "W0301").stdout) == []


def test_parallel_check_reports_in_the_order_given():
    files = [str(BAD / name) for name in ("cycle.yaml", "unknown_key.yaml", "duplicate_id.yaml", "misspelt_op.yaml")]
    assert _run("check", *files, "-j", "2").stdout == _run("check", *files).stdout


def test_version_and_module_entry_point():
    from nncompile.compiler.commands.common import version

    result = _run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"nncompile {version()}"


def test_every_package_is_in_the_distribution():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"nncompile"} | {
        ".".join(("nncompile", *p.parent.relative_to(ROOT).parts))
        for top in ("compiler", "runtime")
        for p in (ROOT / top).rglob("__init__.py")
    }
    assert found == listed
