"""What the check path leaves behind in the calling process: the cycle collector as it found it, and
caches of bounded size."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from nncompile.compiler.diagnostics import UsageError
from nncompile.compiler.ops import BUILTIN
from nncompile.compiler.values import _suits, check_value

from nncompile import compiler
from nncompile.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("spec", ["specs/mnist_mlp.yaml", "tests/bad_specs/cycle.yaml", "tests/bad_specs/expr_fanout_recursion.yaml"])
def test_check_leaves_the_cycle_collector_on(spec: str, capsys: pytest.CaptureFixture[str]):
    """`main(["check", …])` once left it off in the caller (a test process grew to 3.8 GB)."""
    assert gc.isenabled()
    main(["check", str(ROOT / spec)])
    assert gc.isenabled()


def test_analysis_restores_the_collector_as_it_found_it():
    """On, off, and after an exception (a missing file is a UsageError)."""
    with pytest.raises(UsageError):
        compiler.analyze(ROOT / "no_such_spec.yaml")
    assert gc.isenabled()
    gc.disable()
    try:
        compiler.analyze(ROOT / "specs" / "mnist_mlp.yaml")
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_value_check_cache_is_bounded():
    """One bounded cache remembers value checks (an unbounded one sat in front of it)."""
    param = BUILTIN.get("linear").param_index["out"]
    for value in range(1, 6000):
        assert check_value(param, value) is None
    assert _suits.cache_info().maxsize == 4096
    assert _suits.cache_info().currsize <= 4096


def test_integral_reads_the_schema_once_per_value(monkeypatch: pytest.MonkeyPatch):
    """A long list argument is made integral in one pass (the schema was re-read for every element:
    11 s for 100 copies of an 8,192-element shape)."""
    from nncompile.compiler import values

    calls = []
    types = values._types
    monkeypatch.setattr(values, "_types", lambda schema: calls.append(schema) or types(schema))
    schema = {"type": "array", "items": {"type": "integer"}}
    assert values.integral(schema, [3.0, [2.0, 1.5], 1e300]) == [3, [2, 1.5], 1e300]
    assert len(calls) <= 2
