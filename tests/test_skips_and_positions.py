"""Skipped learnable tensors, positional references and special names: each either builds exactly what
the spec says or is refused where it is written (found by a review: a skipped bias became `x + x`, and a
position past a group's end became a cycle)."""

from __future__ import annotations

import textwrap

import pytest
import torch

from nncompile import compiler

OPTIONAL_BIAS = """
nncompile: 1
name: t
params: {use_bias: true}
inputs: {x: [8]}
layers:
  - {id: fc, op: linear, out: 8, bias: false}
  - {id: bias, op: parameter, shape: [8], init: ones, when: $use_bias}
  - {op: add, from: [fc, bias], when: $use_bias}
"""


def codes(write_spec, text: str, **overrides) -> list[str]:
    return [d.code for d in compiler.analyze(write_spec(textwrap.dedent(text)), overrides).diagnostics]


@pytest.mark.parametrize("use_bias", [True, False])
def test_an_optional_bias_is_added_only_where_it_exists(write_spec, use_bias: bool) -> None:
    model = compiler.build(write_spec(OPTIONAL_BIAS), use_bias=use_bias)
    x = torch.randn(2, 8)
    expected = model.fc(x) + (1.0 if use_bias else 0.0)
    assert torch.equal(model(x), expected)
    assert ("bias" in model.state_dict()) is use_bias


@pytest.mark.parametrize("condition", ["$use_bias", "features(fc) == 4"])
def test_reading_a_skipped_tensor_is_refused_where_it_is_read(write_spec, condition: str) -> None:
    text = OPTIONAL_BIAS.replace(
        "when: $use_bias}\n  - {op: add, from: [fc, bias], when: $use_bias}", "when: COND}\n  - {op: add, from: [fc, bias]}"
    )
    text = text.replace("COND", condition)
    analysis = compiler.analyze(write_spec(text), {"use_bias": False})
    assert [d.code for d in analysis.diagnostics] == ["E0314"]
    assert analysis.diagnostics[0].span.line == 9
    with pytest.raises(compiler.SpecError):
        compiler.build(write_spec(text), use_bias=False)


def test_the_flow_passes_over_a_skipped_tensor(write_spec) -> None:
    text = """
    nncompile: 1
    name: t
    params: {extra: false}
    inputs: {x: [8]}
    layers:
      - {id: fc, op: linear, out: 4}
      - {op: parameter, shape: [4], when: $extra}
      - {id: out, op: relu}
    """
    model = compiler.build(write_spec(textwrap.dedent(text)))
    x = torch.randn(3, 8)
    assert torch.equal(model(x), torch.relu(model.fc(x)))


@pytest.mark.parametrize("where", ["top", "group"])
def test_a_position_past_the_list_is_an_unknown_reference(write_spec, where: str) -> None:
    layers = "  - {op: linear, out: 8}\n  - {op: relu}\n  - {op: add, from: [0, 7]}\n"
    body = layers if where == "top" else "  - id: g\n    layers:\n" + textwrap.indent(layers, "    ")
    analysis = compiler.analyze(write_spec("nncompile: 1\nname: t\ninputs: {x: [8]}\nlayers:\n" + body), {})
    assert [d.code for d in analysis.diagnostics] == ["E0303"]
    assert "position 7" in analysis.diagnostics[0].message


def test_positions_inside_a_group_still_resolve(write_spec) -> None:
    body = "  - id: g\n    layers:\n      - {op: linear, out: 8}\n      - {op: relu}\n      - {op: add, from: [0, 1]}\n"
    model = compiler.build(write_spec("nncompile: 1\nname: t\ninputs: {x: [8]}\nlayers:\n" + body))
    x = torch.randn(2, 8)
    linear = getattr(model.g, "0")(x)
    assert torch.equal(model(x), linear + torch.relu(linear))


@pytest.mark.parametrize("name", ["__init__", "__class__", "__dict__", "__getattr__", "__module__"])
def test_special_names_cannot_name_a_layer(write_spec, name: str) -> None:
    text = f"nncompile: 1\nname: t\ninputs: {{x: [8]}}\nlayers:\n  - {{id: {name}, op: linear, out: 8}}\n"
    assert codes(write_spec, text) == ["E0312"]


def test_underscored_names_that_are_not_special_are_kept(write_spec) -> None:
    text = "nncompile: 1\nname: t\ninputs: {x: [8]}\nlayers:\n  - {id: __a, op: linear, out: 8}\n  - {id: b__, op: relu}\n"
    model = compiler.build(write_spec(text))
    assert list(model.state_dict()) == ["__a.weight", "__a.bias"]
