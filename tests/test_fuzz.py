"""Mutation fuzzing in CI: a sample of mutants of every shipped spec (`mutate.py`, hostile mutations
included) through `check`, and through build and a forward pass where `check` passes, in a child
process with a memory limit. `benchmarks/fuzz.py` runs tens of thousands."""

from __future__ import annotations

from pathlib import Path

import pytest
from mutate import SPECS, run_mutants

pytestmark = pytest.mark.slow

SAMPLE = range(250)
FOUND = sorted(str(path) for path in (Path(__file__).parent / "data" / "mutants").glob("*.yaml"))
"""Mutants that once failed, kept as files (named SEED_SPEC, from the generator of their day): an
empty or huge size range, an alias cycle, a stride over 2**31."""


@pytest.fixture(scope="module")
def outcomes() -> list[dict]:
    return run_mutants([*SAMPLE, *FOUND], memory_gib=3)


def test_every_mutant_is_diagnosed_or_builds_and_runs(outcomes):
    failures = [f"mutant {r['item']} of {r['spec']}: {r['failure']}" for r in outcomes if r["failure"]]
    assert not failures, "\n\n".join(failures[:3])


def test_the_sample_reaches_every_spec_and_every_stage(outcomes):
    """Not vacuous: every item ran, most shipped specs are mutated, and mutants are both refused and
    built and run."""
    assert len(outcomes) == len(SAMPLE) + len(FOUND)
    sources = {r["spec"] for r in outcomes}
    assert len(sources) >= 0.8 * len(SPECS), sorted(sources)
    assert sum(r["status"] == 1 for r in outcomes) > 100
    assert sum(r["ran"] for r in outcomes) > 10
