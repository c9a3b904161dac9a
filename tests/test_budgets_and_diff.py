"""Budgets a spec declares (params, MACs, training-step memory) and `nncompile diff` between specs or
git revisions: what a pull-request review reads."""

from __future__ import annotations

import json
import subprocess

import pytest
import torch
from conftest import ROOT
from nncompile.compiler import costs
from nncompile.compiler.budgets import count, size_in_bytes
from nncompile.compiler.emit import LAYER_KEY, example_inputs
from nncompile.compiler.ops import BUILTIN
from torch.fx.passes.shape_prop import ShapeProp

from nncompile import compiler
from nncompile.cli import main

SMALL = """\
nncompile: 1
name: small
inputs: {x: [10]}
{budgets}layers:
  - {id: fc1, op: linear, out: 5, activation: relu}
  - {id: fc2, op: linear, out: 3}
"""
PARAMS = 10 * 5 + 5 + 5 * 3 + 3  # 73
MACS = 10 * 5 + 5 * 3  # 65


def spec(write_spec, budgets: str = "", name: str = "spec.yaml"):
    return write_spec(SMALL.replace("{budgets}", f"budgets: {budgets}\n" if budgets else ""), name)


@pytest.mark.parametrize(
    ("text", "value"),
    [("12M", 12_000_000), ("2.5G", 2_500_000_000), (" 7 K ", 7000), (41, 41), ("999999999999999999.5T", 999999999999999999_500000000000)],
)
def test_counts_take_si_suffixes(text, value):
    assert count(text) == value


@pytest.mark.parametrize(("text", "value"), [("8GiB", 8 * 2**30), ("1.5 GB", 1_500_000_000), ("512KiB", 2**19), ("100B", 100), (7, 7)])
def test_memory_takes_binary_and_decimal_units(text, value):
    assert size_in_bytes(text) == value


def test_budgets_within_limits_are_quiet(write_spec):
    analysis = compiler.analyze(spec(write_spec, f"{{params: {PARAMS}, macs: {MACS}, train_memory: {{batch: 2, limit: 10KB}}}}"))
    assert analysis.ok and not analysis.diagnostics


def test_each_exceeded_budget_is_located(write_spec, capsys):
    path = spec(write_spec, f"{{params: {PARAMS - 1}, macs: 0.06K, train_memory: {{batch: 4, limit: 1KB}}}}")
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"spec.yaml:4:19: error[E0408]: the model has {PARAMS} parameters, over its budget of {PARAMS - 1}" in out
    assert f"spec.yaml:4:29: error[E0408]: the model takes {MACS} MACs per sample, over its budget of 0.06K (60)" in out
    # weights 73 × 4 bytes, the same again for gradients, twice for AdamW's state; outputs of fc1, relu, fc2 at batch 4
    expected = 4 * PARAMS * 4 + 4 * 4 * (5 + 5 + 3)
    assert costs.train_memory(compiler.analyze(path).graph, 4).total == expected == 1376
    assert "spec.yaml:4:68: error[E0408]: one training step at batch 4 needs about 1.3 KiB" in out


def test_the_optimizer_of_the_train_section_sizes_its_state(write_spec):
    graph = compiler.analyze(spec(write_spec)).graph
    sgd, momentum = costs.train_memory(graph, 1, {"type": "sgd"}), costs.train_memory(graph, 1, {"type": "sgd", "momentum": 0.9})
    assert (sgd.optimizer, momentum.optimizer, costs.train_memory(graph, 1).optimizer) == (0, 4 * PARAMS, 8 * PARAMS)


def test_activation_estimate_is_the_bytes_of_torchs_non_view_outputs():
    """The estimate counts what the compiled model's forward allocates, node by node (views excluded)."""
    path = ROOT / "specs" / "resnet18.yaml"
    analysis = compiler.analyze(path)
    model = compiler.build(path).eval()
    ShapeProp(model).propagate(*example_inputs(model, batch=2))
    allocated = 0
    for node in model.graph.nodes:
        layer = node.meta.get(LAYER_KEY)
        allocates = layer in analysis.graph.nodes and not getattr(BUILTIN.get(analysis.graph.nodes[layer].node.op), "view", False)
        if node.op in ("call_module", "call_function") and allocates:
            meta = node.meta["tensor_meta"]
            allocated += meta.shape.numel() * torch.empty((), dtype=meta.dtype).element_size()
    assert costs.activation_bytes(analysis.graph, 2) == allocated


def test_diff_lists_changed_added_and_removed_layers_and_totals(write_spec, capsys):
    old = spec(write_spec, name="old.yaml")
    new = write_spec(
        SMALL.replace("{budgets}", "").replace("out: 5, activation: relu", "out: 8").replace("out: 3}", "out: 3}\n  - {op: relu}"),
        "new.yaml",
    )
    assert main(["diff", str(old), str(new), "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    changes = {layer["layer"]: layer for layer in result["layers"]}
    assert changes["fc1"]["status"] == "changed" and changes["fc1"]["old"]["output"] == [5] and changes["fc1"]["new"]["output"] == [8]
    assert changes["fc1_relu"]["status"] == "removed" and changes["2"]["status"] == "added"
    assert "fc2" in changes and changes["fc2"]["new"]["params"] == 8 * 3 + 3
    assert result["totals"]["params"] == {"old": PARAMS, "new": 10 * 8 + 8 + 8 * 3 + 3}
    assert main(["diff", str(old), str(new)]) == 0
    text = capsys.readouterr().out
    assert "fc1       changed  linear" in text and "[5] → [8]" in text and "params: 73 → 115 (+42, +57.53%)" in text


def test_diff_reads_git_revisions(tmp_path, capsys, monkeypatch):
    def git(*argv: str) -> None:
        subprocess.run(["git", *argv], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "m.yaml").write_text(SMALL.replace("{budgets}", ""))
    git("add", "m.yaml")
    git("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "one")
    (tmp_path / "m.yaml").write_text(SMALL.replace("{budgets}", "").replace("out: 3}", "out: 4}"))
    monkeypatch.chdir(tmp_path)
    assert main(["diff", "HEAD:m.yaml", "m.yaml"]) == 0
    assert "fc2    changed  linear  [3] → [4]  18 → 24  15 → 20" in capsys.readouterr().out
    (tmp_path / "m.yaml").write_text("nncompile: 1\ninputs: {x: [10]}\nlayers: [{op: lineer, out: 2}]\n")
    git("add", "m.yaml")
    git("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "two")
    assert main(["diff", "HEAD:m.yaml", "HEAD~1:m.yaml"]) == 1
    assert capsys.readouterr().out.startswith("HEAD:m.yaml:3:")
    assert main(["diff", "HEAD~5:m.yaml", "m.yaml"]) == 2
