"""compiler/outline.py: units (the block calls FSDP2 and activation checkpointing act on) and the
outlined module, which must be the flat module bit for bit: same keys, weights, outputs and gradients."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
import torch
from nncompile.compiler.emit import LAYER_KEY, emit, example_inputs
from nncompile.compiler.outline import OutlineError, outline, units
from torch import fx
from torch.utils.checkpoint import checkpoint
from zoo import ZOO, ZOO_DIR

from nncompile import compiler

WITHOUT_UNITS = {"alexnet", "vgg11_bn", "transformer_encoder_layer", "transformer_encoder_layer_pre_norm"}
"""Zoo specs without a block call: their layers are plain lists."""


def _analysis(name: str) -> compiler.Analysis:
    """The zoo spec in its small configuration (the export tests' one: same structure, fewer weights)."""
    analysis = compiler.analyze(ZOO_DIR / f"{name}.yaml", ZOO[name].export_overrides)
    assert analysis.ok, analysis.diagnostics
    return analysis


def _inputs(module: fx.GraphModule) -> tuple[torch.Tensor, ...]:
    """Random inputs; token ids (GPT's) drawn below its vocabulary rather than all zeros."""
    generator = torch.Generator().manual_seed(1)
    return tuple(t if t.is_floating_point() else torch.randint(0, 64, t.shape, generator=generator) for t in example_inputs(module, seed=1))


def _flat(value: Any) -> list[torch.Tensor]:
    return [value] if isinstance(value, torch.Tensor) else [t for item in value for t in _flat(item)]


def _step(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[list[torch.Tensor], dict[str, torch.Tensor | None]]:
    """Outputs and gradients of a fixed random projection of them, the RNG seeded (dropout, stochastic depth)."""
    module.zero_grad(set_to_none=True)
    torch.manual_seed(2)
    outputs = _flat(module(*inputs))
    generator = torch.Generator().manual_seed(3)
    loss = sum((o.float() * torch.randn(o.shape, generator=generator)).sum() for o in outputs)
    loss.backward()
    grads = {name: None if p.grad is None else p.grad.clone() for name, p in module.named_parameters(remove_duplicate=False)}
    return [o.detach() for o in outputs], grads


def _assert_same(expected: tuple[list, dict], actual: tuple[list, dict]) -> None:
    assert all(torch.equal(a, b) for a, b in zip(expected[0], actual[0], strict=True))
    assert list(expected[1]) == list(actual[1])
    for name, grad in expected[1].items():
        other = actual[1][name]
        assert (grad is None) == (other is None) and (grad is None or torch.equal(grad, other)), name


def _checkpointed(module: fx.GraphModule, paths: list[str]) -> dict[str, int]:
    """Wrap each unit's forward in non-reentrant `torch.utils.checkpoint`; count each unit's runs."""
    runs = dict.fromkeys(paths, 0)

    def counted(path: str, forward, *args):
        runs[path] += 1
        return forward(*args)

    for path in paths:
        unit = module.get_submodule(path)
        unit.forward = functools.partial(checkpoint, functools.partial(counted, path, unit.forward), use_reentrant=False)
    return runs


def test_default_units() -> None:
    """The outermost block calls that hold weights: every repeat copy of GPT's and ResNet's block."""
    assert units(_analysis("gpt").graph) == ["transformer.h.0", "transformer.h.1"]
    assert units(_analysis("resnet34").graph) == [f"layer{s}.{i}" for s, n in enumerate((3, 4, 6, 3), 1) for i in range(n)]
    assert units(_analysis("unet").graph) == ["inc", "down1", "down2", "down3", "down4", "up1", "up2", "up3", "up4"]
    efficientnet = units(_analysis("efficientnet_b0").graph)
    assert efficientnet[:4] == ["features.0", "features.1.0", "features.2.0", "features.2.1"] and "features.3.0" in efficientnet
    assert {name for name in ZOO if not units(_analysis(name).graph)} == WITHOUT_UNITS


@pytest.mark.parametrize("name", sorted(set(ZOO) - WITHOUT_UNITS))
def test_outlined_zoo_spec_is_the_flat_module(name: str) -> None:
    """Same state_dict keys in order; loads the flat module's weights strictly; each unit called once
    per forward; outputs and gradients bitwise equal in eval and train mode, and with every unit
    checkpointed (each then runs twice: forward and recomputation)."""
    analysis = _analysis(name)
    flat = emit(analysis.graph, analysis.registry)
    paths = units(analysis.graph)
    outlined = outline(emit(analysis.graph, analysis.registry), analysis.graph, paths)
    assert list(outlined.state_dict()) == list(flat.state_dict())
    outlined.load_state_dict(flat.state_dict(), strict=True)
    assert [n.target for n in outlined.graph.nodes if n.op == "call_module" and n.target in paths] == paths
    assert all(isinstance(outlined.get_submodule(p), fx.GraphModule) for p in paths)
    calls = dict.fromkeys(paths, 0)
    for path in paths:
        outlined.get_submodule(path).register_forward_hook(lambda *_, path=path: calls.__setitem__(path, calls[path] + 1))
    x = _inputs(flat)
    with torch.no_grad():
        _assert_same((_flat(flat.eval()(*x)), {}), (_flat(outlined.eval()(*x)), {}))
    assert set(calls.values()) == {1}
    expected = _step(flat.train(), x)
    _assert_same(expected, _step(outlined.train(), x))
    runs = _checkpointed(outlined, paths)
    _assert_same(expected, _step(outlined, x))
    assert set(runs.values()) == {2}


def test_layers_keep_their_metadata_inside_units() -> None:
    """Every fx node that held a layer's value still does, once, in the top graph or in its unit's."""
    analysis = _analysis("gpt")
    flat = emit(analysis.graph, analysis.registry)
    paths = units(analysis.graph)
    outlined = outline(flat, analysis.graph, paths)
    keys = [n.meta[LAYER_KEY] for n in flat.graph.nodes if LAYER_KEY in n.meta]
    graphs = [outlined.graph] + [outlined.get_submodule(p).graph for p in paths]
    found = [n.meta[LAYER_KEY] for g in graphs for n in g.nodes if LAYER_KEY in n.meta]
    assert sorted(found) == sorted(keys)
    inside = [n.meta[LAYER_KEY] for n in outlined.get_submodule("transformer.h.1").graph.nodes if LAYER_KEY in n.meta]
    assert "transformer.h.1.attn.c_attn" in inside and all(key.startswith("transformer.h.1.") for key in inside)


def test_flat_module_is_left_as_it_was() -> None:
    analysis = _analysis("gpt")
    flat = emit(analysis.graph, analysis.registry)
    outlined = outline(flat, analysis.graph, units(analysis.graph))
    assert type(flat.get_submodule("transformer.h.0")) is torch.nn.Module
    assert outlined.get_submodule("transformer.h.0.attn.c_attn") is flat.get_submodule("transformer.h.0.attn.c_attn")
    assert outlined.nncompile_inputs == flat.nncompile_inputs


@pytest.mark.parametrize(
    ("name", "patterns", "expected"),
    [
        ("gpt", ["transformer.h.*"], ["transformer.h.0", "transformer.h.1"]),
        ("gpt", ["*.h.1"], ["transformer.h.1"]),
        ("gpt", ["transformer"], ["transformer"]),
        ("gpt", ["*"], ["transformer"]),
        ("gpt", ["transformer.h.0.attn", "transformer.h.1.mlp"], ["transformer.h.0.attn", "transformer.h.1.mlp"]),
        ("resnet34", ["layer1"], ["layer1.0", "layer1.1", "layer1.2"]),
        ("resnet34", ["layer4.*", "layer4.0.downsample"], ["layer4.0", "layer4.1", "layer4.2"]),
        ("resnet34", ["fc"], []),
        ("resnet34", ["nothing*"], []),
        ("mobilenet_v2", ["features.1*"], ["features.1", *[f"features.{i}" for i in range(10, 19)]]),
    ],
)
def test_patterns_select_outermost_matches(name: str, patterns: list[str], expected: list[str]) -> None:
    """Patterns as in `train.freeze`; a single layer (`fc`) is no unit; nothing matched is an empty list."""
    assert units(_analysis(name).graph, patterns) == expected


def test_tied_weight_across_a_unit_boundary() -> None:
    """GPT's lm_head shares the embedding of unit `transformer`: one tensor, gradients from both uses."""
    analysis = _analysis("gpt")
    flat = emit(analysis.graph, analysis.registry)
    outlined = outline(emit(analysis.graph, analysis.registry), analysis.graph, ["transformer"])
    outlined.load_state_dict(flat.state_dict(), strict=True)
    assert outlined.lm_head.weight is outlined.transformer.wte.weight
    x = _inputs(flat)
    _assert_same(_step(flat.train(), x), _step(outlined.train(), x))


SHARED_TENSORS = """
nncompile: 1
name: shared
inputs: {x: {shape: [4]}}
blocks:
  scaled:
    inputs: [input, scale]
    layers:
      - {id: fc, op: linear, out: 4, from: input}
      - {id: gain, op: parameter, shape: [4], init: {type: normal, std: 1.0}}
      - {id: scaled, op: mul, from: [fc, scale]}
      - {op: mul, from: [scaled, gain]}
layers:
  - {id: scale, op: parameter, shape: [4], init: {type: normal, std: 1.0}}
  - {id: a, op: scaled, from: [x, scale]}
  - {id: b, op: scaled, from: [a, a.gain]}
  - {op: mul, from: [b, a.gain]}
"""

INTERLEAVED = """
nncompile: 1
name: interleaved
inputs: {x: {shape: [4]}}
layers:
  - id: g
    from: [x, y]
    inputs: [p, q]
    layers:
      - {id: a, op: linear, out: 4, from: p}
      - {id: b, op: linear, out: 4, from: q}
      - {op: add, from: [a, b]}
  - {id: y, op: linear, out: 4, from: x}
  - {op: add, from: [g, y]}
"""


def _outlined_spec(path: Path, patterns: list[str] | None = None) -> tuple[fx.GraphModule, fx.GraphModule, list[str]]:
    analysis = compiler.analyze(path, {})
    flat = emit(analysis.graph, analysis.registry)
    paths = units(analysis.graph, patterns)
    return flat, outline(emit(analysis.graph, analysis.registry), analysis.graph, paths), paths


@pytest.mark.parametrize(
    ("text", "patterns", "reads"),
    [
        # `scale` (the root's) and `a.gain` (unit a's) are read by unit b, which gets them as arguments
        (SHARED_TENSORS, None, {"a": ["x", "scale"], "b": ["a", "a.gain"]}),
        # g's layers come before and after y in the written order: g is called after y
        (INTERLEAVED, ["g"], {"g": ["x", "y"]}),
    ],
)
def test_values_read_across_units(write_spec, text: str, patterns: list[str] | None, reads: dict) -> None:
    flat, outlined, paths = _outlined_spec(write_spec(text), patterns)
    assert paths == list(reads)
    outlined.load_state_dict(flat.state_dict(), strict=True)
    calls = {n.target: [arg.target for arg in n.args] for n in outlined.graph.nodes if n.op == "call_module" and n.target in paths}
    assert calls == reads
    x = example_inputs(flat)
    _assert_same(_step(flat, x), _step(outlined, x))


NOT_CONVEX = """
nncompile: 1
name: not_convex
inputs: {x: {shape: [4]}}
layers:
  - id: g
    from: [x, y]
    inputs: [p, q]
    layers:
      - {id: a, op: linear, out: 4, from: p}
      - {id: b, op: linear, out: 4, from: q}
  - {id: y, op: relu, from: g.a}
  - {id: h, from: [g.b], layers: [{id: c, op: linear, out: 4}]}
  - {id: k, from: [h.c, x], inputs: [p, q], layers: [{id: d, op: linear, out: 4, from: q}, {op: add, from: [d, p]}]}
  - {id: z, op: add, from: [k, y]}
"""


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        (["g"], "unit 'g' is not convex: its values reach 'y' outside it and come back into it"),
        (["g", "g"], "unit 'g' is given twice"),
        (["h", "h.c"], "'h.c' is not a block call or group of model 'not_convex'"),
        (["k", "gg"], "'gg' is not a block call or group of model 'not_convex' (did you mean 'g'?)"),
    ],
)
def test_refusals(write_spec, paths: list[str], message: str) -> None:
    analysis = compiler.analyze(write_spec(NOT_CONVEX), {})
    with pytest.raises(OutlineError) as raised:
        outline(emit(analysis.graph, analysis.registry), analysis.graph, paths)
    assert str(raised.value) == message


MUTUAL = """
nncompile: 1
name: mutual
inputs: {x: {shape: [4]}}
layers:
  - id: g1
    from: [x, g2.d]
    inputs: [p, q]
    layers:
      - {id: a, op: linear, out: 4, from: p}
      - {id: b, op: linear, out: 4, from: q}
  - id: g2
    from: [g1.a, x]
    inputs: [p, q]
    layers:
      - {id: c, op: linear, out: 4, from: p}
      - {id: d, op: linear, out: 4, from: q}
  - {op: add, from: [g1.b, g2.c]}
"""


def test_units_reading_each_other_are_refused(write_spec) -> None:
    """Each group alone is convex; both cannot be called, each once, in any order."""
    analysis = compiler.analyze(write_spec(MUTUAL), {})
    module = emit(analysis.graph, analysis.registry)
    for path in ("g1", "g2"):
        _assert_same(_step(module, example_inputs(module)), _step(outline(module, analysis.graph, [path]), example_inputs(module)))
    with pytest.raises(OutlineError, match=r"^units 'g1', 'g2' read each other's values$"):
        outline(module, analysis.graph, ["g1", "g2"])


def test_overlapping_units_are_refused() -> None:
    analysis = _analysis("gpt")
    module = emit(analysis.graph, analysis.registry)
    with pytest.raises(OutlineError, match=r"^units 'transformer' and 'transformer.h.0' overlap: a unit inside another is not supported$"):
        outline(module, analysis.graph, ["transformer", "transformer.h.0"])
