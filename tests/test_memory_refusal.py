"""A model this machine cannot allocate is refused with E0407 before anything is allocated (the hostile
corpus's four layers of 1.6 GB each crashed `build` in the allocator with exit 3)."""

from __future__ import annotations

import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from nncompile.compiler.memory import BUILD_BATCH, build_bytes, unaffordable

from nncompile import compiler

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 6 * 2**30
"""The address space the child processes get: room for torch, not for 6 GiB of weights."""

FOUR_BIG_LAYERS = """
nncompile: 1
name: big
inputs: {x: [20000]}
layers:
  - {op: linear, out: 20000}
  - {op: linear, out: 20000}
  - {op: linear, out: 20000}
  - {op: linear, out: 20000}
"""


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, resource.RLIM_INFINITY))


def run_limited(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, preexec_fn=_limited, timeout=900)


def test_the_estimate_counts_weights_and_one_forward(write_spec) -> None:
    analysis = compiler.analyze(write_spec("nncompile: 1\nname: t\ninputs: {x: [10]}\nlayers:\n  - {op: linear, out: 5}\n"))
    graph, registry = analysis.graph, analysis.registry
    assert build_bytes(graph, registry) == (55 * 4, BUILD_BATCH * 5 * 4)
    assert unaffordable(graph, registry, available=55 * 4 + BUILD_BATCH * 5 * 4) == []
    [refusal] = unaffordable(graph, registry, available=100)
    assert refusal.code == "E0407" and "more than the" in refusal.message


def test_attention_counts_the_scores_it_may_materialise(write_spec) -> None:
    """nn.MultiheadAttention's scripted path holds heads x L x S scores: 65,536 tokens and 4 heads need
    192 GiB at batch 3 (the hostile corpus's case, which died in the allocator)."""
    text = "nncompile: 1\nname: t\ninputs: {x: [65536, 64]}\nlayers:\n  - {op: multihead_attention, heads: 4}\n"
    analysis = compiler.analyze(write_spec(text))
    weights, forward = build_bytes(analysis.graph, analysis.registry)
    assert weights == (4 * 64 * 64 + 4 * 64) * 4
    assert forward == BUILD_BATCH * (65536 * 64 * 4 + 4 * 65536 * 65536 * 4)
    assert [d.code for d in unaffordable(analysis.graph, analysis.registry, available=64 * 2**30)] == ["E0407"]


PLUGIN = """
from nncompile.compiler.ops import FunctionEmit, OpDef

FLATTEN = FunctionEmit("torch:flatten", lambda call: {"start_dim": 1})

def _flatten(name, view):
    return OpDef(name=name, doc="flatten", infer=lambda call: call.x, emit=FLATTEN, view=view)

NNCOMPILE_OPS = [_flatten("aliased", True), _flatten("undeclared", None)]
"""


def test_a_plugin_op_declared_a_view_takes_no_activation_memory(write_spec) -> None:
    """Views are the ops' own fact: a plugin op declared one is left out, one that declares nothing is counted."""
    plugin = write_spec(PLUGIN, "views.py")
    spec = write_spec("nncompile: 1\nname: t\ninputs: {x: [1000]}\nlayers:\n  - {op: aliased}\n  - {op: undeclared}\n")
    analysis = compiler.analyze(spec, plugins=(str(plugin),))
    assert analysis.ok, analysis.diagnostics
    assert build_bytes(analysis.graph, analysis.registry) == (0, BUILD_BATCH * 1000 * 4)


def test_build_refuses_before_allocating(tmp_path: Path) -> None:
    spec = tmp_path / "big.yaml"
    spec.write_text(FOUR_BIG_LAYERS)
    done = run_limited("-m", "nncompile", "build", str(spec), "-o", str(tmp_path / "big.pt"), cwd=ROOT)
    assert done.returncode == 1, done.stderr
    assert "error[E0407]: building this model needs at least 5.96 GiB" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "big.pt").exists()


@pytest.mark.slow
def test_an_allocation_the_estimate_missed_is_located(tmp_path: Path) -> None:
    """Where the estimate lets a model through and the allocator still refuses, the layer is named."""
    spec = tmp_path / "big.yaml"
    spec.write_text(FOUR_BIG_LAYERS)
    script = textwrap.dedent(f"""
        from nncompile import compiler
        import nncompile.compiler.emit
        compiler.emit.unaffordable = lambda graph, registry: []
        try:
            compiler.build({str(spec)!r})
        except compiler.SpecError as error:
            print(error)
    """)
    done = run_limited("-c", script, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "error[E0407]: layer '" in done.stdout and "its weights cannot be allocated" in done.stdout
