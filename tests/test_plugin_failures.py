"""A plugin's bugs are the plugin's: whatever part of its `OpDef` raises (the shape rule, the input count,
the counts, the float32 test, the constructor arguments, the module's import or constructor), `check` and
`build` report E0406 at the layer with exit 1, never an internal error. And a plugin given as a file path
builds with the modules beside it, as a script would import them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from nncompile.cli import main

PLUGIN = """
from nncompile.compiler.ops.core import ModuleEmit, OpDef


def boom(*args, **kwargs):
    raise ZeroDivisionError("plugin bug")


def same(call):
    return call.x


def op(name, target="layers:Twice", **fields):
    return OpDef(**{"name": name, "doc": "", "infer": same, "emit": ModuleEmit(target, lambda call: {}), **fields})


NNCOMPILE_OPS = [
    op("twice"),
    op("bad_infer", infer=boom),
    op("bad_arity", arity=boom),
    op("bad_float32_state", float32_state=boom),
    op("bad_macs", count_macs=boom),
    op("bad_params", count_params=boom),
    OpDef(name="bad_kwargs", doc="", infer=same, emit=ModuleEmit("layers:Twice", boom)),
    op("bad_constructor", target="layers:Broken"),
    op("bad_target", target="no_such_module_of_a_plugin:Thing"),
]
"""

LAYERS = """
import torch


class Twice(torch.nn.Module):
    def forward(self, x):
        return x * 2


class Broken(torch.nn.Module):
    def __init__(self):
        raise ValueError("constructor bug")
"""

CHECK_FAILS = ["bad_infer", "bad_arity", "bad_float32_state", "bad_macs", "bad_params", "bad_kwargs"]
BUILD_FAILS = ["bad_constructor", "bad_target"]


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    folder = tmp_path / "plugin_folder"
    folder.mkdir()
    (folder / "layers.py").write_text(textwrap.dedent(LAYERS))
    (folder / "my_ops.py").write_text(textwrap.dedent(PLUGIN))
    return folder / "my_ops.py"


def spec(tmp_path: Path, op: str) -> str:
    path = tmp_path / f"{op}.yaml"
    path.write_text(f"nncompile: 1\nname: t\ninputs: {{x: [4]}}\nlayers:\n  - {{op: {op}}}\n")
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    assert "internal error" not in captured.err and "Traceback" not in captured.err, captured.err
    return code, captured.out


def test_a_plugin_file_builds_with_the_modules_beside_it(plugin: Path, tmp_path: Path, capsys) -> None:
    code, out = run(capsys, "build", spec(tmp_path, "twice"), "--plugin", str(plugin), "-o", str(tmp_path / "twice.pt"))
    assert code == 0 and "wrote" in out
    import torch
    from nncompile.compiler.export import quiet_torchscript

    with quiet_torchscript():
        reloaded = torch.jit.load(str(tmp_path / "twice.pt"))
    assert torch.equal(reloaded(torch.ones(2, 4)), torch.full((2, 4), 2.0))


@pytest.mark.parametrize("op", CHECK_FAILS)
def test_a_failing_rule_is_the_plugins_error_in_check(plugin: Path, tmp_path: Path, capsys, op: str) -> None:
    code, out = run(capsys, "check", spec(tmp_path, op), "--plugin", str(plugin))
    assert code == 1
    assert f":5:5: error[E0406]: layer '0': the plugin op '{op}' failed" in out and "ZeroDivisionError: plugin bug" in out


@pytest.mark.parametrize("op", BUILD_FAILS)
def test_a_module_that_cannot_be_made_is_the_plugins_error_in_build(plugin: Path, tmp_path: Path, capsys, op: str) -> None:
    assert run(capsys, "check", spec(tmp_path, op), "--plugin", str(plugin))[0] == 0
    output = tmp_path / f"{op}.pt"
    code, out = run(capsys, "build", spec(tmp_path, op), "--plugin", str(plugin), "-o", str(output))
    assert code == 1
    assert f":5:5: error[E0406]: layer '0': the plugin op '{op}' failed to build" in out
    assert not output.exists()
