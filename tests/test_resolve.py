"""The spec language's semantics: naming, blocks, repeats, conditions, references, parameters."""

from __future__ import annotations

import textwrap

import pytest
from nncompile.compiler.diagnostics import UsageError

from nncompile import compiler

HEADER = "nncompile: 1\nname: t\n"


def analyze(write_spec, body: str, **overrides):
    return compiler.analyze(write_spec(HEADER + textwrap.dedent(body)), overrides)


def codes(analysis) -> list[str]:
    return [d.code for d in analysis.diagnostics]


def layers(analysis) -> list[str]:
    return list(analysis.graph.layers)


def reads(analysis, name: str) -> tuple[str, ...]:
    return tuple(str(ref) for ref in analysis.graph.nodes[name].inputs)


def test_layers_without_id_are_named_by_position(write_spec):
    analysis = analyze(write_spec, "inputs: {x: [4]}\nlayers:\n  - {op: linear, out: 3}\n  - {id: head, op: linear, out: 2}\n")
    assert layers(analysis) == ["0", "head"]


def test_repeat_names_copies_and_takes_per_repetition_values(write_spec):
    analysis = analyze(write_spec, "inputs: {x: [4]}\nlayers:\n  - {id: fc, op: linear, repeat: 3, out: [8, 6, 2]}\n")
    assert {n: t.output.shape for n, t in analysis.graph.layers.items()} == {"fc.0": (8,), "fc.1": (6,), "fc.2": (2,)}


def test_repeat_of_one_still_indexes(write_spec):
    analysis = analyze(write_spec, "inputs: {x: [4]}\nlayers:\n  - {id: fc, op: linear, repeat: 1, out: 2}\n")
    assert layers(analysis) == ["fc.0"]


@pytest.mark.parametrize(
    ("layer", "code"),
    [
        ("{op: linear, out: [8, 6]}", "E0306"),
        ("{op: linear, repeat: 3, out: [8, 6]}", "E0306"),
        ("{op: linear, out: $missing}", "E0304"),
        ("{op: linear, out: $width * 1.5}", "E0311"),
        ("{op: linear, out: 2, from: nowhere}", "E0303"),
        ("{op: lineer, out: 2}", "E0301"),
        ("{op: add}", "E0307"),
    ],
)
def test_layer_errors(write_spec, layer: str, code: str):
    analysis = analyze(write_spec, f"params: {{width: 3}}\ninputs: {{x: [4]}}\nlayers:\n  - {layer}\n")
    assert code in codes(analysis)
    assert analysis.graph is None


BLOCK = """
inputs: {x: [4, 8, 8]}
blocks:
  unit:
    params: {width: int, stride: 1}
    layers:
      - {id: conv, op: conv2d, out: $width, kernel: 3, stride: $stride, padding: 1}
      - id: shortcut
        from: input
        when: $stride != 1 or channels(input) != $width
        layers:
          - {op: conv2d, out: $width, kernel: 1, stride: $stride}
      - {op: add, from: [conv, shortcut]}
"""


def test_conditional_group_is_present_only_where_the_shape_changes(write_spec):
    analysis = analyze(write_spec, BLOCK + "layers:\n  - {id: s, op: unit, repeat: 3, width: [4, 6, 6], stride: [1, 2, 1]}\n")
    names = layers(analysis)
    assert "s.0.shortcut.0" not in names
    assert "s.1.shortcut.0" in names
    assert "s.2.shortcut.0" not in names
    assert reads(analysis, "s.0.2") == ("s.0.conv", "x")
    assert analysis.graph.nodes["s.2.2"].output.shape == (6, 4, 4)


def test_block_parameter_errors(write_spec):
    analysis = analyze(write_spec, BLOCK + "layers:\n  - {op: unit, widht: 3}\n")
    assert codes(analysis).count("E0305") == 2
    assert any(d.hint == "did you mean 'width'?" for d in analysis.diagnostics)


def test_static_false_condition_passes_the_input_through(write_spec):
    body = "params: {extra: false}\ninputs: {x: [4]}\nlayers:\n  - {id: a, op: linear, out: 3, when: $extra}\n  - {op: relu}\n"
    assert layers(analyze(write_spec, body)) == ["0"]  # a layer skipped before shapes are known takes no position
    assert layers(analyze(write_spec, body, extra=True)) == ["a", "1"]


def test_block_output_and_several_inputs(write_spec):
    body = """
    inputs: {a: [4], b: [4]}
    blocks:
      merge:
        inputs: [left, right]
        output: total
        layers:
          - {id: total, op: add, from: [left, right]}
          - {op: relu}
    layers:
      - {id: m, op: merge, from: [a, b]}
      - {op: linear, out: 2}
    """
    analysis = analyze(write_spec, body)
    assert reads(analysis, "1") == ("m.total",)
    assert codes(analysis) == ["W0301"]


def test_forward_reference_and_cycle(write_spec):
    ok = "inputs: {x: [4]}\noutputs: [b]\nlayers:\n  - {id: a, op: relu, from: x}\n  - {id: b, op: add, from: [a, c]}\n"
    ok += "  - {id: c, op: tanh, from: x}\n"
    assert analyze(write_spec, ok).ok
    cycle = "inputs: {x: [4]}\nlayers:\n  - {id: a, op: add, from: [x, b]}\n  - {id: b, op: relu, from: a}\n"
    analysis = analyze(write_spec, cycle)
    assert codes(analysis) == ["E0308"]
    assert "a → b → a" in analysis.diagnostics[0].message


def test_duplicate_ids_and_recursion(write_spec):
    assert "E0302" in codes(analyze(write_spec, "inputs: {x: [4]}\nlayers:\n  - {id: a, op: relu}\n  - {id: a, op: relu}\n"))
    recursive = "inputs: {x: [4]}\nblocks:\n  loop:\n    layers: [{op: loop}]\nlayers:\n  - {op: loop}\n"
    assert "E0309" in codes(analyze(write_spec, recursive))


def test_overrides_are_typed(write_spec):
    body = "params: {width: 3}\ninputs: {x: [4]}\nlayers:\n  - {op: linear, out: $width}\n"
    assert analyze(write_spec, body, width=5).graph.layers["0"].output.shape == (5,)
    with pytest.raises(UsageError, match="must be of type int"):
        analyze(write_spec, body, width="wide")
    with pytest.raises(UsageError, match="no parameter"):
        analyze(write_spec, body, depth=2)


def test_unused_layers_and_inputs_warn(write_spec):
    body = "inputs: {x: [4], y: [2]}\noutputs: [b]\nlayers:\n  - {id: a, op: relu}\n  - {id: b, op: tanh, from: x}\n"
    analysis = analyze(write_spec, body)
    assert analysis.ok
    assert sorted(d.message for d in analysis.diagnostics) == ["input 'y' is never used", "output of layer 'a' is never used"]


def test_expansion_is_bounded(write_spec):
    body = "inputs: {x: [4]}\nblocks:\n  wide:\n    layers: [{op: relu, repeat: 1000}]\nlayers:\n  - {op: wide, repeat: 1000}\n"
    assert "E0310" in codes(analyze(write_spec, body))


def test_forward_references_are_sorted_as_early_as_written_and_a_longer_cycle_is_named_in_order(write_spec):
    body = "inputs: {x: [4]}\noutputs: [d]\nlayers:\n  - {id: d, op: add, from: [b, c]}\n  - {id: b, op: relu, from: x}\n"
    body += "  - {id: e, op: sigmoid, from: x}\n  - {id: c, op: tanh, from: b}\n"
    analysis = analyze(write_spec, body)
    assert codes(analysis) == ["W0301"]  # e is never read
    assert layers(analysis) == ["b", "e", "c", "d"]
    loop = "inputs: {x: [4]}\nlayers:\n  - {id: p, op: relu, from: x}\n  - {id: a, op: add, from: [p, c]}\n"
    loop += "  - {id: b, op: relu, from: a}\n  - {id: c, op: tanh, from: b}\n"
    analysis = analyze(write_spec, loop)
    assert codes(analysis) == ["E0308"]
    message = analysis.diagnostics[0].message
    cycle = message.split(": ", 1)[1].split(" → ")
    assert sorted(cycle[:-1]) == ["a", "b", "c"] and cycle[0] == cycle[-1]
    assert " → ".join(cycle[:2]) in "a → b → c → a → b"  # in the direction data flows


def test_the_typed_graph_is_a_networkx_dag(write_spec):
    import networkx as nx

    analysis = analyze(write_spec, "inputs: {x: [4]}\nlayers:\n  - {id: a, op: linear, out: 3}\n  - {op: relu, from: [a]}\n")
    dag = analysis.graph.dag
    assert nx.is_directed_acyclic_graph(dag)
    assert list(nx.topological_sort(dag)) == list(analysis.graph.nodes)
    assert dag.nodes["a"] == {"kind": "call", "op": "linear", "shapes": [("B", 3)]}
