"""The spec language beyond v1: expressions, conditional merges, repeat naming, inline blocks, several
outputs, shape-reading block arguments, parameter scoping, variants, symbolic sizes, learnable tensors."""

from __future__ import annotations

import textwrap

import pytest
import torch
from nncompile.compiler.diagnostics import UsageError

from nncompile import compiler

HEADER = "nncompile: 1\nname: t\n"


def analyze(write_spec, body: str, **overrides):
    return compiler.analyze(write_spec(HEADER + textwrap.dedent(body)), overrides)


def build(write_spec, body: str, **overrides):
    return compiler.build(write_spec(HEADER + textwrap.dedent(body)), **overrides)


def codes(analysis) -> list[str]:
    return [d.code for d in analysis.diagnostics]


def shapes(analysis) -> dict[str, tuple]:
    return {name: tuple(node.outputs[0].shape) for name, node in analysis.graph.layers.items()}


def reads(analysis, name: str) -> list[str]:
    return [str(ref) for ref in analysis.graph.nodes[name].inputs]


def test_expressions_may_start_with_any_term(write_spec):
    body = """
    params: {w: 3, wide: false}
    inputs: {x: [6, 8]}
    layers:
      - {id: a, op: linear, out: '$max($w, 8)'}
      - {id: b, op: linear, out: $channels(x) // 2, from: x}
      - {id: c, op: linear, out: $features(x) * 2, from: x, when: $true}
      - {id: d, op: relu, when: $not $wide and true}
    outputs: [a, b, c, d]
    """
    analysis = analyze(write_spec, body)
    assert shapes(analysis) == {"a": (6, 8), "b": (6, 3), "c": (6, 16), "d": (6, 16)}


def test_expressions_inside_lists_follow_the_parameters(write_spec):
    body = "params: {heads: 2}\ninputs: {x: [4, 12]}\nlayers:\n  - {op: reshape, shape: [-1, $heads, $features(x) // $heads]}\n"
    assert shapes(analyze(write_spec, body))["0"] == (4, 2, 6)
    assert shapes(analyze(write_spec, body, heads=3))["0"] == (4, 3, 4)


RESIDUAL = """
inputs: {x: [4, 8, 8]}
blocks:
  unit:
    params: {out: int, stride: 1}
    layers:
      - {id: conv, op: conv2d, out: $out, kernel: 3, stride: $stride, padding: 1}
      - {id: res, op: add, from: [conv, input], when: $stride == 1 and channels(input) == $out}
layers:
  - {id: u, op: unit, repeat: 3, out: [4, 6, 6], stride: [1, 1, 2]}
"""


def test_a_conditional_merge_is_written_once_and_present_only_where_it_fits(write_spec):
    analysis = analyze(write_spec, RESIDUAL)
    names = list(analysis.graph.layers)
    assert "u.0.res" in names and "u.1.res" not in names and "u.2.res" not in names
    assert reads(analysis, "u.1.conv") == ["u.0.res"]
    assert reads(analysis, "u.2.conv") == ["u.1.conv"]
    model = compiler.build(write_spec(HEADER + textwrap.dedent(RESIDUAL))).eval()
    x = torch.randn(2, 4, 8, 8)
    unit = [getattr(model.u, str(i)) for i in range(3)]
    assert torch.equal(model(x), unit[2].conv(unit[1].conv(unit[0].conv(x) + x)))


def test_repeat_names_from_a_template_with_the_copy_index(write_spec):
    body = """
    inputs: {x: [4]}
    layers:
      - {id: block, op: linear, out: $8 + $i, repeat: {count: 3, names: "layer{$i + 1}"}}
    """
    analysis = analyze(write_spec, body)
    assert shapes(analysis) == {"block.layer1": (8,), "block.layer2": (9,), "block.layer3": (10,)}


def test_flat_repeats_and_inline_blocks_take_positions_in_the_list(write_spec):
    body = """
    inputs: {x: [3, 8, 8]}
    blocks:
      conv_bn_relu:
        inline: true
        params: {out: int}
        layers:
          - {op: conv2d, out: $out, kernel: 3, padding: 1}
          - {op: batchnorm2d}
          - {op: relu}
    layers:
      - id: features
        layers:
          - {op: conv_bn_relu, out: 4}
          - {op: maxpool2d, kernel: 2}
          - {op: conv_bn_relu, out: 8, repeat: {count: 2, names: flat}}
          - {op: linear, out: 5, repeat: {count: 2, names: flat}}
    """
    model = build(write_spec, body)
    assert list(model.state_dict()) == [
        f"features.{i}.{key}"
        for i, keys in [(0, "wb"), (1, "bn"), (4, "wb"), (5, "bn"), (7, "wb"), (8, "bn"), (10, "wb"), (11, "wb")]
        for key in (["weight", "bias"] if keys == "wb" else ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"])
    ]


def test_inline_blocks_keep_their_own_names_for_references(write_spec):
    body = """
    inputs: {x: [4]}
    blocks:
      twice:
        inline: true
        layers:
          - {id: first, op: linear, out: 4}
          - {op: add, from: [first, input]}
    layers:
      - {op: twice}
      - {op: twice}
    """
    analysis = analyze(write_spec, body)
    assert codes(analysis) == ["E0302"]  # both calls name their first layer 'first' in the same list
    renamed = body.replace("{id: first, op: linear, out: 4}", "{op: linear, out: 4}").replace("[first, input]", "[0, input]")
    assert "E0303" in codes(analyze(write_spec, renamed))  # positions are names of the caller's list, not the block's


def test_every_copy_and_every_output_feed_a_merge(write_spec):
    body = """
    inputs: {x: [8, 4, 4]}
    layers:
      - {id: cv1, op: conv2d, out: 8, kernel: 1}
      - {id: halves, op: chunk, chunks: 2, dim: 1}
      - {id: m, op: conv2d, out: 4, kernel: 3, padding: 1, repeat: 2, from: halves.1}
      - {id: cat, op: concat, from: [halves.*, m.*], dim: 1}
    """
    analysis = analyze(write_spec, body)
    assert reads(analysis, "cat") == ["halves.0", "halves.1", "m.0", "m.1"]
    assert shapes(analysis)["cat"] == (16, 4, 4)
    model = compiler.build(write_spec(HEADER + textwrap.dedent(body))).eval()
    x = torch.randn(2, 8, 4, 4)
    a, b = model.cv1(x).chunk(2, 1)
    m0 = getattr(model.m, "0")(b)
    assert torch.equal(model(x), torch.cat([a, b, m0, getattr(model.m, "1")(m0)], 1))


def test_a_value_with_several_outputs_must_be_picked(write_spec):
    body = "inputs: {x: [6]}\nlayers:\n  - {id: parts, op: split, size: 2, dim: 1}\n  - {op: relu}\n"
    analysis = analyze(write_spec, body)
    assert codes(analysis) == ["E0404"]
    assert "parts.0 … parts.2" in analysis.diagnostics[0].message
    picked = body.replace("{op: relu}", "{op: relu, from: parts.2}")
    assert shapes(analyze(write_spec, picked))["1"] == (2,)
    assert codes(analyze(write_spec, body.replace("{op: relu}", "{op: relu, from: parts.3}"))) == ["E0404"]


def test_picking_from_a_skipped_layer_reads_what_it_passes_through(write_spec):
    body = """
    params: {stride: 1}
    inputs: {x: [4, 6, 6]}
    layers:
      - {id: halves, op: chunk, chunks: 2, dim: 1, when: $stride == 1}
      - {id: branch, op: conv2d, out: 2, kernel: 1, stride: $stride, from: halves.1}
    """
    assert shapes(analyze(write_spec, body))["branch"] == (2, 6, 6)
    analysis = analyze(write_spec, body, stride=2)
    assert reads(analysis, "branch") == ["x"] and shapes(analysis)["branch"] == (2, 3, 3)


def test_block_arguments_may_read_shapes(write_spec):
    body = """
    inputs: {x: [8, 4, 4]}
    blocks:
      sppf:
        params: {hidden: int, out: int}
        layers:
          - {id: cv1, op: conv2d, out: $hidden, kernel: 1}
          - {id: cv2, op: conv2d, out: $out, kernel: 1}
    layers:
      - {id: s, op: sppf, hidden: $channels(x) // 2, out: $channels(x)}
    """
    analysis = analyze(write_spec, body)
    assert shapes(analysis) == {"s.cv1": (4, 4, 4), "s.cv2": (8, 4, 4)}
    repeated = body.replace("{id: s, op: sppf, hidden: $channels(x) // 2, out: $channels(x)}", "{op: relu, repeat: $channels(x)}")
    assert codes(analyze(write_spec, repeated)) == ["E0311"]


def test_a_block_sees_its_own_parameters_and_the_models_not_its_callers(write_spec):
    body = """
    params: {width: 4}
    inputs: {x: [4]}
    blocks:
      inner:
        layers: [{op: linear, out: $outer_only}]
      outer:
        params: {outer_only: 3}
        layers: [{op: inner}, {op: linear, out: $width}]
    layers:
      - {op: outer}
    """
    analysis = analyze(write_spec, body)
    assert codes(analysis) == ["E0304"]
    assert "$outer_only" in analysis.diagnostics[0].message
    assert "pass outer_only: $outer_only" in analysis.diagnostics[0].hint
    assert shapes(analyze(write_spec, body.replace("$outer_only", "$width")))["0.0.0"] == (4,)


def test_variants_are_rows_of_parameters(write_spec):
    body = """
    params: {scale: n}
    variants:
      scale:
        n: {width: 0.25}
        s: {width: 0.5}
    inputs: {x: [4]}
    layers:
      - {op: linear, out: '$make_divisible(64 * $width, 8)'}
    """
    assert shapes(analyze(write_spec, body))["0"] == (16,)
    assert shapes(analyze(write_spec, body, scale="s"))["0"] == (32,)
    assert shapes(analyze(write_spec, body, scale="s", width=1.0))["0"] == (64,)
    with pytest.raises(UsageError, match="no such variant"):
        analyze(write_spec, body, scale="q")


SYMBOLIC = """
inputs: {image: [3, H, W]}
sizes:
  H: {min: 32, max: 512, multiple_of: 32, default: 224}
  W: {min: 32, max: 512, multiple_of: 32, default: 224}
layers:
  - {op: conv2d, out: 8, kernel: 3, stride: 2, padding: 1}
  - {op: maxpool2d, kernel: 2}
  - {op: conv2d, out: 8, kernel: 7}
"""


def test_symbolic_sizes_are_proved_over_the_declared_range(write_spec):
    analysis = analyze(write_spec, SYMBOLIC.replace("kernel: 7", "kernel: 3"))
    assert analysis.ok
    assert [str(s) for s in shapes(analysis)["2"]] == ["8", "H/4 - 2", "W/4 - 2"]
    broken = analyze(write_spec, SYMBOLIC.replace("kernel: 7", "kernel: 9"))
    assert codes(broken) == ["E0401"]
    assert "at H=32" in broken.diagnostics[0].message
    assert analyze(write_spec, SYMBOLIC.replace("kernel: 7", "kernel: 9"), H=64, W=64).ok


def test_a_fixed_size_cannot_come_from_a_symbolic_one(write_spec):
    body = SYMBOLIC + "  - {op: flatten}\n  - {op: linear, out: 10}\n"
    analysis = analyze(write_spec, body)
    assert codes(analysis) == ["E0403"]
    assert "in_features" in analysis.diagnostics[0].message
    with pytest.raises(UsageError, match="multiple of 32"):
        analyze(write_spec, body, H=100)


def test_symbolic_exports_run_at_two_sizes(write_spec, tmp_path):
    from nncompile.compiler.emit import example_inputs
    from nncompile.compiler.export import export

    model = build(write_spec, SYMBOLIC.replace("kernel: 7", "kernel: 3") + "  - {op: adaptive_avgpool2d, size: 1}\n").eval()
    for suffix in (".pt2", ".onnx"):
        export(model, example_inputs(model), tmp_path / f"m{suffix}")
    program = torch.export.load(str(tmp_path / "m.pt2")).module()
    for height, width in ((224, 224), (320, 256)):
        x = torch.randn(2, 3, height, width)
        with torch.no_grad():
            assert torch.allclose(program(x), model(x), atol=1e-5)


def test_learnable_tensors_are_named_by_their_id(write_spec):
    body = """
    inputs: {x: [5, 4]}
    layers:
      - {id: token, op: parameter, shape: [1, 1, 4], init: {type: constant, value: 0.5}}
      - {id: scale, op: parameter, shape: [4], init: ones, trainable: false}
      - {id: joined, op: concat, from: [token, x], dim: 1}
      - {op: mul, from: [joined, scale]}
    """
    model = build(write_spec, body)
    assert list(model.state_dict()) == ["token", "scale"]
    assert not model.scale.requires_grad and torch.equal(model.token, torch.full((1, 1, 4), 0.5))
    x = torch.randn(3, 5, 4)
    assert torch.equal(model(x), torch.cat([model.token.expand(3, 1, 4), x], 1) * model.scale)
    assert compiler.analyze(write_spec(HEADER + textwrap.dedent(body))).graph.total_params == 8


def test_a_learnable_tensor_needs_a_batch_free_op(write_spec):
    body = "inputs: {x: [4, 8, 8]}\nlayers:\n  - {id: p, op: parameter, shape: [1, 4, 8, 8]}\n  - {op: conv2d, out: 2, kernel: 1}\n"
    analysis = analyze(write_spec, body)
    assert codes(analysis) == ["W0301", "E0401"]  # x is unused: the conv reads the tensor before it
    assert "'p' has no batch dimension" in analysis.diagnostics[1].message


def test_modules_are_registered_in_spec_order_and_wired_by_from(write_spec):
    body = """
    inputs: {x: [4]}
    layers:
      - {id: linear1, op: linear, out: 8, from: norm1}
      - {id: linear2, op: linear, out: 4}
      - {id: norm1, op: layernorm, from: x}
    outputs: [linear2]
    """
    model = build(write_spec, body)
    assert [key.split(".")[0] for key in model.state_dict()] == ["linear1", "linear1", "linear2", "linear2", "norm1", "norm1"]
    x = torch.randn(2, 4)
    assert torch.equal(model(x), model.linear2(model.linear1(model.norm1(x))))


def test_activation_is_a_node_of_its_own(write_spec, tmp_path):
    plugin = tmp_path / "modact.py"
    plugin.write_text(
        "from nncompile.compiler.ops.core import ModuleEmit, OpDef\n"
        "NNCOMPILE_OPS = [OpDef(name='tanh_module', doc='Tanh as a module', infer=lambda call: call.x,\n"
        "    emit=ModuleEmit('torch.nn:Tanh', lambda call: {}), category='activation')]\n"
    )
    path = write_spec(HEADER + "inputs: {x: [4]}\nlayers:\n  - {id: fc, op: linear, out: 3, activation: tanh_module}\n")
    model = compiler.build(path, plugins=(str(plugin),))
    assert isinstance(model.fc, torch.nn.Linear) and isinstance(model.fc_tanh_module, torch.nn.Tanh)
    x = torch.randn(2, 4)
    assert torch.equal(model(x), torch.tanh(model.fc(x)))


def test_input_shapes_and_groups_take_parameters_and_inputs(write_spec):
    body = """
    params: {n: 6}
    inputs: {a: [$n], b: [$n]}
    layers:
      - id: pair
        from: [a, b]
        inputs: [left, right]
        layers:
          - {op: mul, from: [left, right]}
          - {op: linear, out: 2}
    """
    analysis = analyze(write_spec, body, n=5)
    assert shapes(analysis)["pair.1"] == (2,) and analysis.graph.layers["pair.1"].input_types[0].shape == (5,)


def test_layers_share_a_learnable_tensor(write_spec):
    body = """
    inputs: {tokens: {shape: [5], dtype: int64}}
    layers:
      - {id: wte, op: embedding, num: 11, dim: 4}
      - {id: head, op: linear, out: 11, bias: false, share: {weight: wte}}
    """
    model = build(write_spec, body)
    assert list(model.state_dict()) == ["wte.weight", "head.weight"]
    assert model.head.weight is model.wte.weight and [name for name, _ in model.named_parameters()] == ["wte.weight"]
    assert analyze(write_spec, body).graph.total_params == 44
    assert codes(analyze(write_spec, body.replace("out: 11", "out: 12"))) == ["E0405"]
    assert codes(analyze(write_spec, body.replace("share: {weight: wte}", "share: {bias: wte}"))) == ["E0405"]


def test_a_comment_silences_a_warning_on_its_line_but_never_an_error(write_spec):
    body = "inputs: {x: [4]}\nlayers:\n  - {id: spare, op: parameter, shape: [2]}  # nncompile: ignore[W0301]\n  - {op: relu, from: x}\n"
    assert analyze(write_spec, body).diagnostics == []
    assert codes(analyze(write_spec, body.replace("  # nncompile: ignore[W0301]", ""))) == ["W0301"]
    error = body.replace("{op: relu, from: x}", "{op: relu, from: nowhere}  # nncompile: ignore[E0303]")
    assert codes(analyze(write_spec, error)) == ["E0303"]


def test_block_calls_take_every_layer_key_and_nested_layers_are_checked(write_spec):
    body = """
    inputs: {x: [4]}
    blocks:
      unit:
        layers: [{op: linear, out: 4}]
    layers:
      - {id: u, op: unit, repeat: {count: 2, names: "u{$i}"}}
      - layers:
          - {op: relu, repeat: {count: 2, bogus: 3}}
          - {id: 3, op: relu}
    """
    analysis = analyze(write_spec, body)
    assert codes(analysis) == ["E0201", "E0203"]
    assert "unknown key 'bogus'" in analysis.diagnostics[0].message


def test_a_block_or_group_may_take_one_output_of_a_split(write_spec):
    body = """
    inputs: {x: [4, 6]}
    blocks:
      twice:
        layers: [{op: mul, value: 2}]
    layers:
      - {id: parts, op: split, size: 3, dim: 2}
      - {id: a, op: twice, from: parts.0}
      - {id: b, layers: [{op: relu}], from: parts.1}
      - {op: add, from: [a, b]}
    """
    analysis = analyze(write_spec, body)
    assert reads(analysis, "a.0") == ["parts.0"] and reads(analysis, "b.0") == ["parts.1"]


@pytest.mark.parametrize("name", ["training", "half", "forward", "class", "graph", "nncompile_inputs"])
def test_ids_that_a_module_already_has_are_refused(write_spec, name):
    analysis = analyze(write_spec, f"inputs: {{x: [4]}}\nlayers:\n  - {{id: {name}, op: linear, out: 3}}\n")
    assert codes(analysis) == ["E0312"]


def test_the_reserved_names_are_torchs():
    from nncompile.compiler.names import MODULE_ATTRIBUTES
    from torch import fx, nn

    module = fx.GraphModule(nn.Module(), fx.Graph())
    assert {n for n in set(dir(module)) | set(dir(nn.Module())) if not n.startswith("__")} == MODULE_ATTRIBUTES


def test_a_block_parameter_cannot_take_a_layer_keys_name(write_spec):
    body = "inputs: {x: [4]}\nblocks:\n  stack:\n    params: {layers: 2}\n    layers: [{op: relu}]\nlayers:\n  - {op: stack}\n"
    assert codes(analyze(write_spec, body)) == ["E0305"]


def test_copies_may_read_their_own_inputs(write_spec):
    body = """
    inputs: {p3: [8, 8, 8], p4: [16, 4, 4]}
    layers:
      - {id: cv2, op: conv2d, out: 4, kernel: 1, repeat: 2, from: "p{$i + 3}"}
      - {id: cv3, op: conv2d, out: 2, kernel: 1, repeat: 2, from: "p{$i + 3}"}
      - {id: out, op: concat, repeat: 2, from: ["cv2.{$i}", "cv3.{$i}"]}
      - {id: same, op: relu, repeat: {count: 2, chain: false}, from: p3}
    outputs: [out.*, same.*]
    """
    analysis = analyze(write_spec, body)
    assert reads(analysis, "cv2.1") == ["p4"] and reads(analysis, "out.1") == ["cv2.1", "cv3.1"]
    assert reads(analysis, "same.1") == ["p3"]
    assert shapes(analysis)["out.1"] == (6, 4, 4)


def test_activation_none_adds_nothing(write_spec):
    body = "params: {act: none}\ninputs: {x: [4]}\nlayers:\n  - {id: fc, op: linear, out: 3, activation: $act}\n"
    assert list(analyze(write_spec, body).graph.layers) == ["fc"]
    assert list(analyze(write_spec, body, act="relu").graph.layers) == ["fc", "fc_relu"]


def test_a_spec_defines_its_own_functions(write_spec):
    body = """
    params: {width: 0.25, max_channels: 1024}
    functions:
      ch: {args: [c], value: '$ceil(min($c, $max_channels) * $width / 8) * 8'}
      twice: {args: [c], value: '$2 * ch($c)'}
    inputs: {x: [4]}
    layers:
      - {op: linear, out: $ch(100)}
      - {op: linear, out: $twice(100)}
    """
    assert shapes(analyze(write_spec, body)) == {"0": (32,), "1": (64,)}
    assert shapes(analyze(write_spec, body, width=0.5))["0"] == (56,)
    assert codes(analyze(write_spec, body.replace("$twice(100)", "$thrice(100)"))) == ["E0304"]
    assert codes(analyze(write_spec, body.replace("* $width", "* $widht"))) == ["E0304"]


def test_an_integral_float_is_the_integer_as_json_schema_reads_it(write_spec):
    body = "params: {n: 4.0}\ninputs: {x: [4]}\nlayers:\n  - {op: linear, out: 3.0}\n  - {op: linear, out: $n, repeat: 2.0}\n"
    model = build(write_spec, body)
    assert model(torch.randn(2, 4)).shape == (2, 4)
    assert type(model.get_submodule("0").out_features) is int
    assert codes(analyze(write_spec, body.replace("3.0", "3.5"))) == ["E0203"]


def test_a_size_no_short_formula_fits_is_shown_as_a_function_with_exact_values(write_spec):
    body = """
    inputs: {x: [H, H, 8]}
    sizes: {H: {min: 4, max: 40, default: 14}}
    layers:
      - {op: shifted_window_attention, heads: 2, window: 7, shift: 3}
      - {op: shifted_window_attention, heads: 2, window: 7}
    """
    analysis = analyze(write_spec, body)
    total = analysis.graph.total_macs
    assert str(total) == "f(H)"  # window padding rounds up: no polynomial fits
    for h in (4, 14, 15, 40):
        padded = -(-h // 7) * 7
        assert total.at({"H": h}) == 2 * padded * padded * 8 * (4 * 8 + 2 * 49)


def test_a_group_sees_only_its_own_layers_and_the_diagnostic_says_how_to_pass_more(write_spec):
    body = """
    inputs: {x: [8]}
    layers:
      - {id: a, op: linear, out: 8}
      - id: g
        layers:
          - {op: linear, out: 8}
          - {op: add, from: [input, a]}
    """
    analysis = analyze(write_spec, body)
    assert codes(analysis) == ["E0303"]
    assert "declare `inputs: [input, a]`" in analysis.diagnostics[0].hint
    passed = body.replace("      - id: g\n", "      - id: g\n        inputs: [input, a]\n        from: [a, a]\n")
    passed = passed.replace("from: [input, a]}", "from: [0, a]}")
    analysis = analyze(write_spec, passed)
    assert analysis.ok, analysis.diagnostics
    assert reads(analysis, "g.1") == ["g.0", "a"]


def test_a_skipped_unnamed_layer_that_keeps_its_position_is_warned_about(write_spec):
    body = """
    inputs: {x: [8, 4, 4]}
    blocks:
      mb:
        params: {hidden: int}
        layers:
          - {op: conv2d, out: $hidden, kernel: 1, when: $hidden != channels(input)}
          - {op: conv2d, out: 8, kernel: 1}
    layers:
      - {op: mb, hidden: 8}
      - {op: mb, hidden: 16}
    """
    analysis = analyze(write_spec, body)
    assert codes(analysis) == ["W0401"]
    assert "'0.0'" in analysis.diagnostics[0].message
    assert [name for name in analysis.graph.layers if name.startswith("0.")] == ["0.1"]  # the gap it warns of
    by_parameter = body.replace("params: {hidden: int}", "params: {hidden: int, width: 8}").replace("channels(input)", "$width")
    assert codes(analyze(write_spec, by_parameter)) == []
    last = body.replace("          - {op: conv2d, out: 8, kernel: 1}\n", "").replace(
        "      - {op: mb, hidden: 16}\n", ""
    )  # nothing numbered after it: no gap to warn of
    assert codes(analyze(write_spec, last)) == []


def test_a_list_parameter_gives_each_copy_its_item_and_len_counts_table_rows(write_spec):
    body = """
    params: {widths: [4, 8, 16], rows: [[1, 2], [3, 4], [5, 6]]}
    inputs: {x: [3, 8, 8]}
    layers:
      - {op: conv2d, out: $widths, kernel: 3, padding: 1, repeat: {count: '$len($rows)', names: 'conv{["a", "b", "c"][$i]}'}}
    """
    analysis = analyze(write_spec, body)
    assert analysis.ok, analysis.diagnostics
    assert {name: shape[0] for name, shape in shapes(analysis).items()} == {"conva": 4, "convb": 8, "convc": 16}
    unrepeated = body.replace(', repeat: {count: \'$len($rows)\', names: \'conv{["a", "b", "c"][$i]}\'}', "")
    assert codes(analyze(write_spec, unrepeated)) == ["E0306"]
    assert codes(analyze(write_spec, body.replace("'$len($rows)'", "2"))) == ["E0306"]  # 3 values for 2 copies


@pytest.mark.parametrize(
    ("layers", "warned"),
    [
        # an inline call skipped by shapes: its spliced layer keeps position 0, the next conv is '1'
        ("  - {op: one_conv, when: channels(x) != 8}\n  - {op: conv2d, out: 8, kernel: 1}\n", True),
        # a flat repeat skipped by shapes keeps positions 0 and 1
        (
            "  - {op: conv2d, out: 8, kernel: 1, when: channels(x) != 8, repeat: {count: 2, names: flat}}\n"
            "  - {op: conv2d, out: 8, kernel: 1}\n",
            True,
        ),
        # the conditional layer last in an inline body, a conv after the call in the caller's list
        ("  - {op: relu_then_conv}\n  - {op: conv2d, out: 8, kernel: 1}\n", True),
        # copies named by a template take no positions: nothing is renumbered
        (
            "  - {op: conv2d, out: 8, kernel: 1, when: channels(x) != 8}\n"
            "  - {op: conv2d, out: 8, kernel: 1, repeat: {count: 2, names: 'c{$i}'}}\n",
            False,
        ),
        # only layers without tensors come after it (ResNet's downsample, then the add): no key moves
        ("  - {id: down, op: conv2d, out: 8, kernel: 1, when: channels(x) != 8}\n  - {op: add, from: [x, down]}\n", False),
    ],
)
def test_position_gaps_are_warned_where_keys_would_be_renumbered(write_spec, layers: str, warned: bool):
    blocks = """blocks:
  one_conv: {inline: true, layers: [{op: conv2d, out: 8, kernel: 1}]}
  relu_then_conv:
    inline: true
    layers: [{op: relu}, {op: conv2d, out: 8, kernel: 1, when: channels(input) != 8}]
"""
    analysis = compiler.analyze(write_spec(f"{HEADER}inputs: {{x: [8, 4, 4]}}\n{blocks}layers:\n{layers}"))
    assert analysis.ok, analysis.diagnostics
    assert codes(analysis) == (["W0401"] if warned else [])


def test_an_id_may_be_a_template_so_a_loop_names_its_siblings(write_spec):
    body = """
    params: {block_config: [2, 3]}
    inputs: {x: [8]}
    blocks:
      stage:
        inline: true
        params: {s: int}
        layers:
          - {id: 'dense{$s + 1}', op: linear, out: 8, repeat: {count: '$block_config[$s]', names: 'layer{$i + 1}'}}
          - {id: 'transition{$s + 1}', op: linear, out: 8, when: '$s < len($block_config) - 1'}
    layers:
      - {op: stage, repeat: {count: '$len($block_config)', names: flat}, s: $i}
    """
    analysis = analyze(write_spec, body)
    assert analysis.ok, analysis.diagnostics
    assert list(shapes(analysis)) == ["dense1.layer1", "dense1.layer2", "transition1", "dense2.layer1", "dense2.layer2", "dense2.layer3"]
    assert codes(analyze(write_spec, body.replace("'dense{$s + 1}'", "'dense{$s - 1}'"))) == ["E0311"]  # 'dense-1'
    assert codes(analyze(write_spec, body.replace("'transition{$s + 1}'", "'dense{$s + 1}'"))) == ["E0302", "E0302"]  # in each copy
