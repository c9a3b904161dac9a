"""Mutation fuzzing in CI: a sample of mutants of every shipped spec (`mutate.py`) through `check`, and
through build and a forward pass where `check` passes. `benchmarks/fuzz.py` runs tens of thousands."""

from __future__ import annotations

import warnings

import pytest
from mutate import SPECS, Outcome, fuzz_one, mutant

SAMPLE = range(250)
FOUND = (150, 237, 349, 2407, 8552)
"""Seeds whose mutants once failed (an empty or huge size range, an alias cycle, a stride over 2**31)."""


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[int, tuple[str, Outcome]]:
    folder = tmp_path_factory.mktemp("mutants")
    results = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for seed in [*SAMPLE, *FOUND]:
            source, text = mutant(seed)
            path = folder / f"{seed}_{source.name}"
            path.write_bytes(text.encode("utf-8", "surrogateescape"))
            results[seed] = (source.name, fuzz_one(path))
    return results


def test_every_mutant_is_diagnosed_or_builds_and_runs(outcomes):
    failures = [f"mutant {seed} of {name}: {outcome.failure}" for seed, (name, outcome) in outcomes.items() if outcome.failure]
    assert not failures, "\n\n".join(failures[:3])


def test_the_sample_reaches_every_spec_and_every_stage(outcomes):
    """Not vacuous: most shipped specs are mutated, and mutants are both refused and built and run."""
    sources = {name for name, _ in outcomes.values()}
    assert len(sources) >= 0.8 * len(SPECS), sorted(sources)
    statuses = [outcome for _, outcome in outcomes.values()]
    assert sum(o.status == 1 for o in statuses) > 100
    assert sum(o.ran for o in statuses) > 10
