"""The compiler's import graph, read from the source: no import cycle, never the runtime, each stage of
load → validate → resolve → infer → emit → export importing no later one, and the resolve and infer
passes each one public function whose steps nothing else imports."""

from __future__ import annotations

import ast
import graphlib
import importlib
import inspect
from pathlib import Path

import pytest

COMPILER = Path(__file__).resolve().parent.parent / "compiler"
STAGES = {
    "load": ("load",),
    "validate": ("validate",),
    "resolve": ("resolve", "link", "params", "declarations"),  # link, params, declarations: resolve's steps beside its package
    "infer": ("infer",),
    "emit": ("emit", "nn"),
    "export": ("export",),
}
"""Each stage in pipeline order, and the compiler modules (or packages) it is made of."""
PASSES = {"resolve": "resolve", "infer": "infer"}
"""Passes that are packages: the one public function each exposes."""


def _module_name(path: Path) -> str:
    parts = ("compiler", *path.relative_to(COMPILER).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(COMPILER.rglob("*.py"))}


def _imports(name: str, *, top_level_only: bool = False) -> set[str]:
    """The modules `name` imports (`compiler.x`, `runtime.x`, or a third-party name), at its top level
    only or anywhere (inside functions too)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nodes = tree.body if top_level_only else ast.walk(tree)
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {_local(alias.name) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = _local(node.module or "")
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            found |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names}
    return found


def _local(module: str) -> str:
    """`nncompile.compiler.x` as `compiler.x` (and the runtime likewise)."""
    return module.removeprefix("nncompile.")


def _stage(module: str) -> int | None:
    """The position in the pipeline of the stage `module` belongs to; None for shared modules."""
    for position, members in enumerate(STAGES.values()):
        if any(module == f"compiler.{member}" or module.startswith(f"compiler.{member}.") for member in members):
            return position
    return None


def test_the_import_graph_is_read():
    """The reader sees the imports that matter (a broken reader would make every check below pass)."""
    assert "compiler.link" in _imports("compiler.resolve", top_level_only=True)
    assert {"compiler.resolve._expand", "compiler.resolve._context"} <= _imports("compiler.resolve")
    assert "compiler.expr" in _imports("compiler.resolve._expressions")  # `from .. import expr`
    assert "compiler.emit" in _imports("compiler.export") - _imports("compiler.export", top_level_only=True)  # inside a function
    assert _stage("compiler.resolve._nodes") == _stage("compiler.link") == 2 and _stage("compiler.ir") is None


def test_no_import_cycle():
    graph = {name: _imports(name, top_level_only=True) & MODULES.keys() for name in MODULES}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        pytest.fail(f"modules import each other in a cycle: {', '.join(sorted(set(error.args[1])))}")


@pytest.mark.parametrize("name", sorted(MODULES))
def test_the_compiler_never_imports_the_runtime(name):
    assert not {module for module in _imports(name) if module == "runtime" or module.startswith("runtime.")}


@pytest.mark.parametrize("name", sorted(name for name in MODULES if _stage(name) is not None))
def test_a_stage_imports_no_later_stage(name):
    later = {module for module in _imports(name) if (_stage(module) or 0) > _stage(name)}
    assert not later, f"{name} ({list(STAGES)[_stage(name)]}) imports later stages: {sorted(later)}"


@pytest.mark.parametrize("package, function", sorted(PASSES.items()))
def test_a_pass_has_one_public_function(package, function):
    module = importlib.import_module(f"nncompile.compiler.{package}")
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and inspect.isfunction(value) and value.__module__.startswith(module.__name__)
    }
    assert public == {function} and function in module.__all__
    steps = {name for name in MODULES if name.startswith(f"compiler.{package}.")}
    assert steps and all(step.rpartition(".")[2].startswith("_") for step in steps), "a pass's steps are private modules"


@pytest.mark.parametrize("package", sorted(PASSES))
def test_only_a_pass_imports_its_steps(package):
    outside = {
        name: steps
        for name in MODULES
        if not (name == f"compiler.{package}" or name.startswith(f"compiler.{package}."))
        and (steps := {module for module in _imports(name) if module.startswith(f"compiler.{package}._")})
    }
    assert not outside
