"""The bad-spec corpus: every spec in tests/bad_specs/ is rejected with located diagnostics, never a traceback.

Each `NAME.yaml` holds one problem; `NAME.expected` is the exact stdout of
`nncompile check tests/bad_specs/NAME.yaml` run from the repository root.
Regenerate the golden files with `NNCOMPILE_UPDATE_GOLDEN=1 pytest tests/test_bad_specs.py`,
then read the diff: a golden file records what a user sees.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from mutate import deadline

from nncompile.cli import main

ROOT = Path(__file__).resolve().parent.parent
BAD_SPECS = Path("tests/bad_specs")
SPECS = sorted(path.stem for path in (ROOT / BAD_SPECS).glob("*.yaml"))
UPDATE_GOLDEN = os.environ.get("NNCOMPILE_UPDATE_GOLDEN") == "1"
HANG_S = 300
"""A hang guard, not a speed test: bombs, deep nesting and recursive blocks are cut short by the
compiler's own bounds (layers, expression steps, sizes), and a check still running after this long
fails through the alarm instead of blocking the suite (a busy machine runs ten times slower)."""

SENTINELS = {"python_tag": "nncompile_pwned_by_python_tag", "python_in_expression": "nncompile_pwned_by_expression"}
"""Hostile specs and the file each would create in the working directory if it were ever executed."""


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


def run_check(capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    """`nncompile check ARGS...` in-process, bounded by HANG_S."""
    capsys.readouterr()
    with deadline(HANG_S):
        code = main(["check", *args])
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def spec_path(name: str) -> str:
    return str(BAD_SPECS / f"{name}.yaml")


@pytest.fixture(autouse=True)
def _from_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the repository root, so diagnostics name `tests/bad_specs/NAME.yaml` as the golden files do."""
    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("name", SPECS)
def test_rejected_with_located_error(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Exit status 1, at least one `file:line:col: error[CODE]:` line, no traceback."""
    result = run_check(capsys, spec_path(name))
    assert result.code == 1, result.err
    assert "Traceback" not in result.out + result.err
    located = re.compile(rf"^{re.escape(spec_path(name))}:\d+:\d+: error\[E\d{{4}}\]: \S", re.MULTILINE)
    assert located.search(result.out), result.out


@pytest.mark.parametrize("name", SPECS)
def test_matches_golden(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """stdout equals NAME.expected byte for byte (or rewrites it under NNCOMPILE_UPDATE_GOLDEN=1)."""
    golden = ROOT / BAD_SPECS / f"{name}.expected"
    out = run_check(capsys, spec_path(name)).out
    if UPDATE_GOLDEN:
        golden.write_bytes(out.encode("utf-8"))
    assert golden.exists(), f"no golden file {golden.name}: run with NNCOMPILE_UPDATE_GOLDEN=1 and review it"
    assert out == golden.read_bytes().decode("utf-8")


@pytest.mark.parametrize("name", SENTINELS)
def test_hostile_spec_executes_nothing(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Checking a spec that would run `touch SENTINEL` leaves the working directory empty."""
    monkeypatch.chdir(tmp_path)
    assert run_check(capsys, str(ROOT / spec_path(name))).code == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(shutil.which("touch") is None, reason="needs a `touch` command")
def test_python_tag_sentinel_is_live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Control for the test above: an unsafe YAML loader really does run the tag's command."""
    monkeypatch.chdir(tmp_path)
    yaml.unsafe_load((ROOT / spec_path("python_tag")).read_text(encoding="utf-8"))
    assert (tmp_path / SENTINELS["python_tag"]).exists()


def test_json_format(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_check(capsys, "--format", "json", spec_path("misspelt_op"))
    assert result.code == 1
    diagnostics = json.loads(result.out)
    assert isinstance(diagnostics, list) and diagnostics
    for diagnostic in diagnostics:
        assert set(diagnostic) == {"code", "message", "span", "hint", "severity"}
        assert diagnostic["span"]["file"] == spec_path("misspelt_op")
    assert diagnostics[0]["code"] == "E0301" and diagnostics[0]["severity"] == "error"


def test_github_format(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_check(capsys, "--format", "github", spec_path("misspelt_op"), spec_path("duplicate_key"))
    assert result.code == 1
    lines = result.out.splitlines()
    assert len(lines) == 2
    assert all(line.startswith("::error file=tests/bad_specs/") for line in lines)
