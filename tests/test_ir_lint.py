"""The IR's lint raises IRError for a broken graph, also under `python -O` (it used `assert`, which -O
removes, so a broken graph would have gone on to emit)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from nncompile.compiler.ir import OUTPUT, IRError, TypedGraph

from nncompile import compiler

ROOT = Path(__file__).resolve().parent.parent
SPEC = "nncompile: 1\nname: t\ninputs: {x: [4]}\nlayers:\n  - {id: a, op: linear, out: 4}\n  - {id: b, op: relu}\n"


def typed(write_spec) -> TypedGraph:
    return compiler.analyze(write_spec(SPEC)).graph


def test_a_node_read_before_it_is_made_is_refused(write_spec) -> None:
    graph = typed(write_spec)
    swapped = {name: graph.nodes[name] for name in ["x", "b", "a", OUTPUT]}
    with pytest.raises(IRError, match="b reads a node defined after it"):
        TypedGraph(graph.name, swapped).lint()


def test_the_output_must_come_last(write_spec) -> None:
    graph = typed(write_spec)
    with pytest.raises(IRError, match="exactly one output node, last"):
        TypedGraph(graph.name, {name: graph.nodes[name] for name in ["x", "a", OUTPUT, "b"]}).lint()


def test_the_lint_survives_python_optimisations(tmp_path: Path) -> None:
    spec = tmp_path / "t.yaml"
    spec.write_text(SPEC)
    script = (
        "from nncompile import compiler\nfrom nncompile.compiler.ir import OUTPUT, IRError, TypedGraph\n"
        f"g = compiler.analyze({str(spec)!r}).graph\n"
        "try:\n    TypedGraph(g.name, {n: g.nodes[n] for n in ['x', 'b', 'a', OUTPUT]}).lint()\n"
        "except IRError as error:\n    print('refused:', error)\n"
    )
    done = subprocess.run([sys.executable, "-O", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.stdout.strip() == "refused: b reads a node defined after it", done.stderr
