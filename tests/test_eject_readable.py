"""Ejected files a reviewer would accept: every shipped spec, ejected by `build` as a user would, passes
mypy and ruff with their default settings; no stateless module is registered under a number; the
docstring records no absolute path."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, SPECS

from nncompile.cli import main

SHIPPED = [*SPECS, *sorted((ROOT / "specs" / "zoo").glob("*.yaml"))]
TOOLS = Path(sys.executable).parent


@pytest.fixture(scope="module")
def ejected(tmp_path_factory) -> Path:
    """Every shipped spec ejected by `build` at its defaults, one file each."""
    folder = tmp_path_factory.mktemp("ejected")
    for spec in SHIPPED:
        assert main(["build", str(spec), "-o", str(folder / f"{spec.stem}.py")]) == 0
    return folder


def _run(tool: str, *arguments: str, folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(TOOLS / tool), *arguments], capture_output=True, text=True, cwd=folder)


@pytest.mark.slow
def test_ejected_files_pass_mypy_and_ruff(ejected: Path, capsys):
    files = sorted(path.name for path in ejected.glob("*.py"))
    checked = _run("mypy", "--cache-dir", str(ejected / ".mypy_cache"), *files, folder=ejected)
    assert checked.returncode == 0, checked.stdout[-4000:]
    linted = _run("ruff", "check", "--isolated", *files, folder=ejected)
    assert linted.returncode == 0, linted.stdout[-4000:]


def _module(file: Path) -> torch.nn.Module:
    loader = importlib.util.spec_from_file_location(f"readable_{file.stem}", file)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    cls = re.findall(r"^class (\w+)", file.read_text(), re.MULTILINE)[-1]
    with torch.device("meta"):
        return getattr(module, cls)()


@pytest.mark.slow
@pytest.mark.parametrize("spec", SHIPPED, ids=lambda p: p.stem)
def test_no_stateless_module_is_named_by_a_number(ejected: Path, spec: Path):
    """A module named by a number outside a list (`add_module("8", ...)`, read as `getattr(self, "8")`)
    must hold weights: their keys need the number; a stateless one is named after its op."""
    model = _module(ejected / f"{spec.stem}.py")
    lists = (torch.nn.Sequential, torch.nn.ModuleList)
    for name, parent in model.named_modules():
        for part, child in parent.named_children():
            if part.isdigit() and not isinstance(parent, lists):
                assert child.state_dict(), f"{name}.{part}"


def test_gpt_calls_its_attention_by_name(ejected: Path):
    text = (ejected / "gpt.py").read_text()
    assert 'getattr(self, "8")' not in text and 'add_module("8"' not in text
    assert "self.scaled_dot_product_attention = Attention(dropout=dropout, causal=True)" in text


def test_the_docstring_records_no_absolute_path(tmp_path: Path, capsys):
    spec, output = ROOT / "specs" / "mnist_mlp.yaml", tmp_path / "deep" / "mlp.py"
    output.parent.mkdir()
    assert main(["build", str(spec), "-o", str(output)]) == 0
    docstring = output.read_text().split('"""')[1]
    assert str(tmp_path) not in docstring and str(ROOT) not in docstring
    from nncompile.compiler.eject import _relative

    here = Path.cwd()
    assert _relative(f"nncompile build {here / 'a' / 'b.yaml'} -o /elsewhere/out.py") == "nncompile build a/b.yaml -o out.py"
    elsewhere = f"nncompile build {os.sep}x{os.sep}s.yaml --output=/y/m.py --set n=1"
    assert _relative(elsewhere) == "nncompile build s.yaml --output=m.py --set n=1"
