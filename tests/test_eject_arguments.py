"""Ejected classes take only arguments they honour: every shipped spec, ejected by `build` (which offers
the model parameters that qualify), built with other values of all its root's arguments at once, is the
model nncompile builds with those values: the same state_dict keys in the same order, a strict load,
the same leaf modules (type and settings: a dropout's p, a layer norm's bias) and the same outputs,
scripted too.
Ejected again at those values, the file is the same but for the defaults."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import ROOT, SPECS
from nncompile.compiler import analyze
from nncompile.compiler.emit import example_inputs
from test_eject import _randomized
from zoo import ZOO

from nncompile import compiler
from nncompile.cli import main

SHIPPED = [*SPECS, *sorted((ROOT / "specs" / "zoo").glob("*.yaml")), ROOT / "tests" / "specs" / "normalized_mlp.yaml"]
PLUGINS = {"normalized_mlp": ("normlinear",)}
"""The plugins a spec's ops come from."""


def small(spec: Path) -> dict[str, Any]:
    """The zoo's small configuration of a spec (fewer weights, the same structure)."""
    entry = ZOO.get(spec.stem) if spec.parent.name == "zoo" else None
    return dict(entry.export_overrides) if entry else {}


def eject_with_build(spec: Path, file: Path, overrides: dict[str, Any]) -> str:
    sets = [word for name, value in overrides.items() for word in ("--set", f"{name}={value}")]
    plugins = [word for plugin in PLUGINS.get(spec.stem, ()) for word in ("--plugin", plugin)]
    assert main(["build", str(spec), "-o", str(file), *sets, *plugins]) == 0
    return file.read_text()


def root_keywords(text: str) -> dict[str, Any]:
    """The root class's keyword arguments and their defaults."""
    root = [node for node in ast.parse(text).body if isinstance(node, ast.ClassDef)][-1]
    init = next(node for node in root.body if isinstance(node, ast.FunctionDef) and node.name == "__init__")
    return {a.arg: ast.literal_eval(d) for a, d in zip(init.args.args[1:], init.args.defaults, strict=True)}


def _others(value: Any) -> list[Any]:
    """Values to try in place of `value`, none of those eject builds with to choose its arguments."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value * 4, value + 3, value * 5, value + 4]
    return [round(value * 0.75 + 0.3, 3), round(value * 0.5 + 0.05, 3)]


def _new_values(spec: Path, base: dict[str, Any], keywords: dict[str, Any]) -> dict[str, Any]:
    """Another value for every keyword at once, each the first that nncompile builds the spec with."""
    chosen: dict[str, Any] = {}
    for name, value in keywords.items():
        for other in _others(value):
            if analyze(spec, {**base, **chosen, name: other}, PLUGINS.get(spec.stem, ())).ok:
                chosen[name] = other
                break
        else:
            pytest.fail(f"{spec.stem}: no other value of {name} builds")
    return chosen


def _load(file: Path, cls: str) -> type[torch.nn.Module]:
    loader = importlib.util.spec_from_file_location(f"ejected_{file.stem}", file)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return getattr(module, cls)


def _leaves(module: torch.nn.Module) -> list[tuple[str, str]]:
    """The modules that compute (a block or group with no modules of its own is a namespace, or none)."""
    leaves = [m for m in module.modules() if not list(m.children())]
    kinds = [type(m).__name__ if type(m).__name__ != "Group" else "Module" for m in leaves]  # a namespace
    return sorted((kind, m.extra_repr()) for kind, m in zip(kinds, leaves) if m.extra_repr() or m.state_dict())


def _outputs(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():
        out = model(*inputs)
    return out if isinstance(out, tuple) else (out,)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
@pytest.mark.parametrize("spec", SHIPPED, ids=lambda p: p.stem)
def test_the_root_builds_what_nncompile_builds_with_other_arguments(spec: Path, tmp_path: Path, capsys):
    base = small(spec)
    text = eject_with_build(spec, tmp_path / f"{spec.stem}.py", base)
    keywords = root_keywords(text)
    chosen = _new_values(spec, base, keywords)
    cls = re.findall(r"^class (\w+)", text, re.MULTILINE)[-1]
    ejected = _load(tmp_path / f"{spec.stem}.py", cls)(**chosen).eval()
    compiled = compiler.build(spec, plugins=PLUGINS.get(spec.stem, ()), **{**base, **chosen}).eval()
    _randomized(compiled)
    assert list(ejected.state_dict()) == list(compiled.state_dict())
    ejected.load_state_dict(compiled.state_dict(), strict=True)
    assert _leaves(ejected) == _leaves(compiled)
    inputs = example_inputs(compiled, batch=2)
    want = _outputs(compiled, inputs)
    assert all(torch.equal(a, b) for a, b in zip(_outputs(ejected, inputs), want, strict=True))
    scripted = torch.jit.script(ejected)  # the values forward reads from attributes (self.n_head) script too
    assert all(torch.equal(a, b) for a, b in zip(_outputs(scripted, inputs), want, strict=True))
    again = eject_with_build(spec, tmp_path / f"{spec.stem}_again.py", {**base, **chosen})
    assert root_keywords(again) == chosen
    assert _signature_free(again) == _signature_free(text)  # nothing else in the file depended on them


def _signature_free(text: str) -> str:
    """The file without its docstring and its root's signature."""
    body = text.split('"""', 2)[2]
    root = body.rindex("\nclass ")
    start = body.index("def __init__(", root)
    return body[:start] + body[body.index("-> None:", start) :]


@pytest.mark.parametrize(
    ("spec", "keywords"),
    [
        ("specs/mnist_mlp.yaml", ["hidden", "num_classes"]),
        ("specs/resnet18.yaml", ["num_classes"]),
        ("specs/zoo/transformer_encoder_layer.yaml", ["d_model", "nhead", "dim_feedforward", "dropout"]),
        ("specs/zoo/gpt.yaml", ["block_size", "vocab_size", "n_head", "n_embd", "dropout", "bias"]),
        (
            "specs/zoo/vit_b_16.yaml",
            [
                *("channels", "image_size", "patch_size", "num_heads", "hidden_dim", "mlp_dim"),
                *("dropout", "attention_dropout", "num_classes"),
            ],
        ),
    ],
)
def test_the_root_offers_the_parameters_it_can_take(tmp_path: Path, spec: str, keywords: list[str], capsys):
    """GPT's n_layer and ViT's num_layers are not offered: another value makes another number of blocks."""
    text = eject_with_build(ROOT / spec, tmp_path / "model.py", small(ROOT / spec))
    assert list(root_keywords(text)) == keywords


def flat(text: str) -> str:
    """The source with ruff's line breaks undone: one space between words, none inside brackets."""
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"([(\[]) ", r"\1", text)
    return re.sub(r",? ([)\]])", r"\1", text)


def test_gpt_blocks_take_n_embd_and_n_head_and_write_every_value_from_them(tmp_path: Path, capsys):
    text = flat(eject_with_build(ROOT / "specs" / "zoo" / "gpt.yaml", tmp_path / "gpt.py", {}))
    attention = text[text.index("class CausalSelfAttention(") : text.index(" class Mlp(")]
    assert "def __init__(self, n_head: int, n_embd: int, dropout: float, bias: bool) -> None:" in attention
    assert "nn.Linear(n_embd, 3 * n_embd, bias=bias)" in attention
    assert "reshape(qkv[0], shape=[-1, self.n_head, self.n_embd // self.n_head])" in attention
    assert "768" not in attention and "2304" not in attention and ", 12" not in attention
    assert "# (B, T, 3 * n_embd)" in attention and "# (B, n_head, T, n_embd // n_head)" in attention
    assert "nn.Linear(4 * n_embd, n_embd, bias=bias)" in text
    gpt = text[text.index("class Gpt(") :]
    assert gpt.count("Block(") == 1 and "for _ in range(12)" in gpt  # twelve blocks, built by a loop
    assert "# (B, T, vocab_size)" in gpt


def test_a_chain_of_named_blocks_is_a_sequential_built_by_a_loop(tmp_path: Path, capsys):
    """ViT's encoder layers are named `encoder_layer_0`… (torchvision's keys): an nn.Sequential of an
    OrderedDict, as torchvision writes it, whose twelve identical items one loop builds."""
    text = flat(eject_with_build(ROOT / "specs" / "zoo" / "vit_b_16.yaml", tmp_path / "vit.py", {}))
    assert 'self.encoder.layers = nn.Sequential(OrderedDict((f"encoder_layer_{i}", EncoderBlock(' in text
    assert "for i in range(12)))" in text and text.count("EncoderBlock(num_heads") == 1
    assert "layers = self.encoder.layers(dropout)" in text
    assert "nn.Parameter(nn.init.zeros_(torch.empty(1, 1, hidden_dim)))" in text


def test_a_shape_comment_names_the_argument_it_follows(tmp_path: Path, capsys):
    text = eject_with_build(ROOT / "specs" / "resnet18.yaml", tmp_path / "resnet18.py", {})
    assert "fc = self.fc(flatten) # (B, num_classes)" in flat(text)
    assert "1000" not in text.replace("num_classes: int = 1000", "")


def test_without_build_every_value_is_a_literal(capsys):
    """From Python without `params`/`variant`, no model parameter is offered: the root takes nothing."""
    from nncompile.compiler.eject import eject

    analysis = analyze(ROOT / "specs" / "zoo" / "gpt.yaml", small(ROOT / "specs" / "zoo" / "gpt.yaml"))
    text = eject(analysis.graph, analysis.registry, analysis.document, "nncompile build")
    assert root_keywords(text) == {}
    assert "class CausalSelfAttention(nn.Module):" in text and "def __init__(self) -> None:" in text
