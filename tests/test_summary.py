"""`nncompile summary`: the torchinfo-style tree (blocks, groups and repeats summed from their layers and
checked against the built model's modules), --depth, --batch memory, frozen layers, JSON and Markdown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT
from nncompile.compiler import analyze
from nncompile.compiler.costs import activation_bytes

from nncompile import compiler
from nncompile.cli import main

RESNET18 = ROOT / "specs" / "resnet18.yaml"


def _json(capsys, *args: str) -> dict:
    assert main(["summary", *args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_each_row_sums_the_parameters_of_its_module(capsys):
    report = _json(capsys, str(RESNET18))
    model = compiler.build(RESNET18)
    for row in report["tree"]:
        try:
            module = model.get_submodule(row["name"])
        except AttributeError:  # a function (relu, add, flatten): no module, no parameters
            assert row["params"] == 0
            continue
        assert row["params"] == sum(p.numel() for p in module.parameters()), row["name"]
    top = [row for row in report["tree"] if row["depth"] == 1]
    assert sum(row["params"] for row in top) == report["totals"]["params"] == 11_689_512
    assert sum(row["macs"] for row in top) == report["macs"]
    layer1 = next(row for row in report["tree"] if row["name"] == "layer1")
    assert (layer1["type"], layer1["output"], layer1["batched"]) == ("2 × basic", [64, 56, 56], True)
    block = next(row for row in report["tree"] if row["name"] == "layer2.0")
    assert block["type"] == "basic"
    assert next(row for row in report["tree"] if row["name"] == "layer2.0.downsample")["type"] == "group"


def test_depth_folds_blocks_and_the_text_draws_the_tree(capsys):
    assert main(["summary", str(RESNET18), "--depth", "1"]) == 0
    text = capsys.readouterr().out
    assert "├─layer1 (2 × basic)" in text and "147,968" in text
    assert "│ ├─" not in text
    assert main(["summary", str(RESNET18), "--depth", "2"]) == 0
    text = capsys.readouterr().out
    assert "│ ├─0 (basic)" in text and "conv1 (conv2d)" in text and "│ │ ├─" not in text
    assert text.splitlines()[-1] == "resnet18: 11,689,512 parameters, 1.814 GMACs per sample (image [3, 224, 224])"


def test_memory_follows_the_batch(capsys):
    graph = analyze(RESNET18).graph
    for batch in (1, 32):
        memory = _json(capsys, str(RESNET18), "--batch", str(batch))["totals"]["memory_bytes"]
        assert memory["inputs"] == batch * 3 * 224 * 224 * 4
        assert memory["forward"] == activation_bytes(graph, batch)
        assert memory["params"] == 11_689_512 * 4
        assert memory["total"] == memory["inputs"] + memory["forward"] + memory["params"]
    assert main(["summary", str(RESNET18), "--batch", "32"]) == 0
    text = capsys.readouterr().out
    assert f"Forward pass size (MiB): {activation_bytes(graph, 32) / 2**20:,.2f}" in text


def test_frozen_layers_and_tensors_are_marked(write_spec, capsys):
    spec = write_spec(
        """nncompile: 1
name: frozen
inputs: {x: [4, 8]}
layers:
  - {id: scale, op: parameter, shape: [1, 8], init: ones, trainable: false}
  - {id: body, layers: [{id: a, op: linear, out: 8}, {id: b, op: linear, out: 8}], from: x}
  - {id: head, op: linear, out: 2}
train:
  data: {dataset: digits}
  optimizer: {type: sgd, lr: 0.1}
  freeze: [body.a]
"""
    )
    report = _json(capsys, str(spec))
    state = {row["name"]: row["trainable"] for row in report["tree"]}
    assert state == {"scale": "no", "body": "partly", "body.a": "no", "body.b": "yes", "head": "yes"}
    assert report["totals"]["frozen_params"] == 8 + 72
    assert report["totals"]["trainable_params"] == report["totals"]["params"] - 80


def test_markdown_is_a_table(capsys):
    assert main(["summary", str(RESNET18), "--format", "markdown", "--depth", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| Layer | Type | Output shape | Param # | Trainable | MACs |"
    rows = [line for line in lines[2:] if line.startswith("| ")]
    assert len(rows) == 11 and "| `layer1` | 2 × basic | `[B, 64, 56, 56]` | 147,968 | yes |" in "\n".join(rows)


@pytest.mark.parametrize("flag", [["--depth", "0"], ["--batch", "0"]])
def test_bad_depth_or_batch_is_a_usage_error(flag: list[str], capsys):
    assert main(["summary", str(RESNET18), *flag]) == 2
    assert "must be" in capsys.readouterr().err


def test_symbolic_sizes_are_summed_as_formulas(capsys, tmp_path: Path):
    report = _json(capsys, str(ROOT / "specs" / "zoo" / "gpt.yaml"))
    assert isinstance(report["macs"], str) and "T" in report["macs"]
    assert report["totals"]["macs_at_defaults"] > 0
