"""The two-way shape proof over generated specs (see `shapegen`): `check` accepts exactly the specs
torch runs, and where it accepts, every layer's shape, dtype, parameter count and MAC count is
torch's; inputs are floats, integers and bools, sometimes two of them. `benchmarks/shape_property.py`
runs the same comparison over many more seeds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from conftest import check_fx_shapes
from nncompile.compiler.emit import emit, example_inputs
from nncompile.compiler.ops import BUILTIN
from shapegen import BATCH, Case, compare, generate
from torch.fx.passes.shape_prop import ShapeProp

from nncompile import compiler

SEEDS = range(400)
BUILT = 40
"""How many of the accepted specs are also built and run (the emitted model's shapes against the checker's)."""


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory) -> list[tuple[Case, compiler.Analysis]]:
    folder = tmp_path_factory.mktemp("generated")
    results = []
    for seed in SEEDS:
        case = generate(seed)
        path = folder / f"{seed}.yaml"
        path.write_text(yaml.safe_dump(case.spec, sort_keys=False))
        results.append((case, compiler.analyze(path, case.overrides)))
    return results


def _shown(case: Case) -> str:
    return yaml.safe_dump(case.spec, sort_keys=False, default_flow_style=None) + (f"--set {case.overrides}\n" if case.overrides else "")


def test_check_accepts_exactly_what_torch_runs_with_torchs_shapes_and_counts(verdicts):
    failures = [(case, problems) for case, analysis in verdicts if (problems := compare(case, analysis))]
    report = "\n\n".join(f"{case.spec['name']}: {problems}\n{_shown(case)}" for case, problems in failures[:3])
    assert not failures, f"{len(failures)} disagreement(s) with torch:\n{report}"


def test_both_verdicts_are_well_represented(verdicts):
    """Guards against a generator that only makes duds, or only valid specs (the reverse direction
    would then never be tested)."""
    accepted = sum(case.accepted for case, _ in verdicts)
    assert 0.4 * len(verdicts) < accepted < 0.9 * len(verdicts), accepted


def test_the_generator_covers_the_language(verdicts):
    ran = set().union(*(case.ops for case, _ in verdicts))
    assert ran >= set(BUILTIN.names), f"ops never run: {sorted(set(BUILTIN.names) - ran)}"
    texts = [yaml.safe_dump(case.spec) for case, _ in verdicts]
    for feature in ("blocks:", "repeat:", "names: m{$i + 1}", "when:", "$i", "$channels(", "activation:", "layers:", "outputs:"):
        assert sum(feature in text for text in texts) >= 5, feature
    assert sum(bool(case.overrides) for case, _ in verdicts) >= 5, "--set overrides"
    dtypes = {t["dtype"] for case, _ in verdicts for t in case.spec["inputs"].values() if isinstance(t, dict)}
    assert dtypes >= {"int64", "int32", "float64", "float16", "bfloat16", "bool"}, dtypes
    mixed = [case for case, _ in verdicts if len({node["outputs"][0][1] for node in case.nodes.values() if node["op"] == "input"}) > 1]
    assert sum(case.accepted for case in mixed) >= 5 and sum(not case.accepted for case in mixed) >= 5, "inputs of two dtypes"
    for dtype in ("bool", "int32", "int64"):  # layers make values of each in specs torch runs; some specs with them it refuses
        made = sum(case.accepted and _holds(case, dtype, layers_only=True) for case, _ in verdicts)
        refused = sum(not case.accepted and _holds(case, dtype) for case, _ in verdicts)
        assert made >= 5 and refused >= 5, (dtype, made, refused)


def _holds(case: Case, dtype: str, layers_only: bool = False) -> bool:
    """Whether a value of `dtype` is among the case's inputs (unless `layers_only`) or layer outputs."""
    nodes = [node for node in case.nodes.values() if not (layers_only and node["op"] == "input")]
    return any(dtype == output[1] for node in nodes for output in node["outputs"])


def test_accepted_specs_build_and_run_with_the_checked_shapes(verdicts):
    accepted = [(case, analysis) for case, analysis in verdicts if analysis.ok][:BUILT]
    assert len(accepted) == BUILT
    for case, analysis in accepted:
        model = emit(analysis.graph, analysis.registry)
        for module in model.modules():  # token ids are data, not shape: kept in range, as the oracle keeps them
            if isinstance(module, torch.nn.Embedding):
                module.register_forward_pre_hook(lambda m, args: (args[0].clamp(0, m.num_embeddings - 1),))
        torch.manual_seed(0)
        ShapeProp(model).propagate(*example_inputs(model, batch=BATCH))
        assert check_fx_shapes(model, analysis.graph, batch=BATCH) > 0, case.spec["name"]


def test_a_disagreement_is_reported(tmp_path: Path):
    """The comparison itself can fail: a checker that got one shape wrong is caught."""
    case = next(case for seed in SEEDS if (case := generate(seed)).accepted and len(case.nodes) > 2)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(case.spec, sort_keys=False))
    analysis = compiler.analyze(path, case.overrides)
    name = next(name for name, node in case.nodes.items() if node["op"] != "input")
    case.nodes[name]["outputs"] = [((99,), "float32", True)]
    assert any(name in problem for problem in compare(case, analysis))
    case.accepted = False
    assert compare(case, analysis) == [f"check accepted what torch refuses: {case.refusal}"]
