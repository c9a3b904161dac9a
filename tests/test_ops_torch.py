"""Each op compiled alone agrees with the torch code it stands for: the same outputs, the shapes infer
predicted, the parameter count, and the MACs (FlopCounterMode's, with attention run by its math kernel so
that its two matrix products are counted: fused CPU kernels are invisible to FlopCounterMode). Each also
scripts with TorchScript and exports with torch.export."""

from __future__ import annotations

import textwrap
import warnings

import pytest
import torch
import torch.nn.functional as F
from conftest import check_fx_shapes
from nncompile.compiler.emit import example_inputs
from nncompile.compiler.ops import BUILTIN
from nncompile.compiler.targets import ExportTarget
from op_samples import DTYPE_CASES, DTYPE_IDS, dtype_spec
from shapegen import Refused, Value, oracle
from torch.fx.passes.shape_prop import ShapeProp
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models.swin_transformer import ShiftedWindowAttention

from nncompile import compiler


def _layers(text: str) -> str:
    return textwrap.indent(textwrap.dedent(text).strip(), "  ") + "\n"


def _torchvision_window_attention(ours: torch.nn.Module, x: torch.Tensor, window: list[int], shift: list[int]) -> torch.Tensor:
    """torchvision's ShiftedWindowAttention holding `ours`'s tensors (strictly: the same names), applied to x."""
    reference = ShiftedWindowAttention(x.shape[-1], window, shift, ours.num_heads).eval()
    reference.load_state_dict(ours.state_dict(), strict=True)
    return reference(x)


CASES = {
    "relu6": ("{x: [5]}", "- {op: relu6}", lambda m, x: F.relu6(x)),
    "hardsigmoid": ("{x: [5]}", "- {op: hardsigmoid}", lambda m, x: F.hardsigmoid(x)),
    "mish": ("{x: [5]}", "- {op: mish}", lambda m, x: F.mish(x)),
    "softplus": ("{x: [5]}", "- {op: softplus, beta: 2.0}", lambda m, x: F.softplus(x, beta=2.0)),
    "conv_transpose2d": (
        "{x: [4, 5, 5]}",
        "- {id: up, op: conv_transpose2d, out: 3, kernel: 3, stride: 2, padding: 1, output_padding: 1}",
        lambda m, x: F.conv_transpose2d(x, m.up.weight, m.up.bias, stride=2, padding=1, output_padding=1),
    ),
    "conv_transpose1d": (
        "{x: [4, 9]}",
        "- {id: up, op: conv_transpose1d, out: 6, kernel: 4, stride: 2, groups: 2, bias: false}",
        lambda m, x: F.conv_transpose1d(x, m.up.weight, None, stride=2, groups=2),
    ),
    "pool1d": (
        "{x: [3, 11]}",
        "- {op: maxpool1d, kernel: 3, stride: 2, ceil_mode: true}\n- {op: avgpool1d, kernel: 2}\n- {op: adaptive_avgpool1d, size: 2}",
        lambda m, x: F.adaptive_avg_pool1d(F.avg_pool1d(F.max_pool1d(x, 3, 2, ceil_mode=True), 2), 2),
    ),
    "upsample": (
        "{x: [2, 5, 7]}",
        "- {op: upsample, scale: 2}\n- {op: upsample, size: [9, 11], mode: bilinear, align_corners: false}",
        lambda m, x: F.interpolate(F.interpolate(x, scale_factor=2), size=(9, 11), mode="bilinear", align_corners=False),
    ),
    "layernorm2d": (
        "{x: [6, 3, 3]}",
        "- {id: ln, op: layernorm2d, eps: 1.0e-6}",
        lambda m, x: F.layer_norm(x.permute(0, 2, 3, 1), (6,), m.ln.weight, m.ln.bias, 1e-6).permute(0, 3, 1, 2),
    ),
    "stochastic_depth": ("{x: [4, 3]}", "- {op: stochastic_depth, p: 0.5}", lambda m, x: x),
    "matmul": ("{a: [3, 4], b: [4, 5]}", "- {op: matmul, from: [a, b]}", lambda m, a, b: a @ b),
    "matmul_weight": (
        "{x: [3, 4]}",
        "- {id: w, op: parameter, shape: [4, 6], init: {type: normal, std: 1.0}}\n- {op: matmul, from: [x, w]}",
        lambda m, x: x @ m.w,
    ),
    "scaled_dot_product_attention": (
        "{q: [2, 5, 8], k: [2, 7, 8], v: [2, 7, 4]}",
        "- {op: scaled_dot_product_attention, from: [q, k, v], scale: 0.5}",
        lambda m, q, k, v: F.scaled_dot_product_attention(q, k, v, scale=0.5),
    ),
    "causal_attention": (
        "{q: [2, 6, 8]}",
        "- {op: scaled_dot_product_attention, from: [q, q, q], causal: true}",
        lambda m, q: F.scaled_dot_product_attention(q, q, q, is_causal=True),
    ),
    "masked_attention": (
        "{q: [2, 6, 8], mask: {shape: [1, 6, 6], dtype: bool}}",
        "- {op: scaled_dot_product_attention, from: [q, q, q, mask]}",
        lambda m, q, mask: F.scaled_dot_product_attention(q, q, q, attn_mask=mask),
    ),
    "multihead_attention": (
        "{x: [5, 8]}",
        "- {id: attn, op: multihead_attention, heads: 2}",
        lambda m, x: m.attn(x, x, x, need_weights=False)[0],
    ),
    "padded_attention": (
        "{x: [5, 8], pad: {shape: [5], dtype: bool}}",
        "- {id: attn, op: multihead_attention, heads: 2, from: [x, x, x, pad]}",
        lambda m, x, pad: m.attn(x, x, x, key_padding_mask=pad, need_weights=False)[0],
    ),
    "cross_attention": (
        "{q: [5, 8], kv: [7, 6]}",
        "- {id: attn, op: multihead_attention, heads: 4, from: [q, kv, kv]}",
        lambda m, q, kv: m.attn(q, kv, kv, need_weights=False)[0],
    ),
    "shifted_window_attention": (
        "{x: [9, 10, 8]}",  # padded to 14 x 14, shifted by 3 both ways
        "- {id: attn, op: shifted_window_attention, heads: 2, window: 7, shift: 3}",
        lambda m, x: _torchvision_window_attention(m.attn, x, [7, 7], [3, 3]),
    ),
    "window_attention_rectangular": (
        "{x: [9, 10, 6]}",
        "- {id: attn, op: shifted_window_attention, heads: 3, window: [5, 4], shift: [2, 1]}",
        lambda m, x: _torchvision_window_attention(m.attn, x, [5, 4], [2, 1]),
    ),
    "window_attention_one_window": (
        "{x: [4, 6, 8]}",  # the padded map is one window: no shift, as in Swin's last stage at 224
        "- {id: attn, op: shifted_window_attention, heads: 2, window: 7, shift: 3}",
        lambda m, x: _torchvision_window_attention(m.attn, x, [7, 7], [3, 3]),
    ),
    "pad": (
        "{x: [3, 5, 7]}",
        "- {id: a, op: pad, amounts: [1, 2, -1, 3], value: 0.5}\n- {op: pad, amounts: [2, 2, 1, 1], mode: reflect}",
        lambda m, x: F.pad(F.pad(x, [1, 2, -1, 3], value=0.5), [2, 2, 1, 1], mode="reflect"),
    ),
    "pad_replicate_circular": (
        "{x: [3, 5]}",
        "- {id: a, op: pad, amounts: [3, 0], mode: replicate}\n- {op: pad, amounts: [5, 8], mode: circular}",
        lambda m, x: F.pad(F.pad(x, [3, 0], mode="replicate"), [5, 8], mode="circular"),
    ),
    "pad_to": (  # U-Net's Up: the upsampled map padded to its skip connection's size
        "{x: [3, 11, 9]}",
        "- {id: down, op: maxpool2d, kernel: 2}\n- {id: up, op: upsample, scale: 2}\n- {op: pad, from: [up, x]}",
        lambda m, x: F.pad(F.interpolate(F.max_pool2d(x, 2), scale_factor=2), [0, 1, 0, 1]),
    ),
    "split": (
        "{x: [12, 3]}",
        "- {id: parts, op: split, sizes: [2, 2, 8]}\n- {op: add, from: [parts.0, parts.1]}",
        lambda m, x: x[:, :2] + x[:, 2:4],
    ),
    "chunk": (
        "{x: [6, 4]}",
        "- {id: c, op: chunk, chunks: 2, dim: 2}\n- {op: mul, from: [c.0, c.1]}",
        lambda m, x: x[..., :2] * x[..., 2:],
    ),
    "select_slice": (
        "{x: [7, 4]}",
        "- {op: slice, dim: 1, start: 1, step: 2}\n- {op: select, dim: 2, index: -1}",
        lambda m, x: x[:, 1::2, -1],
    ),
    "transpose_unflatten": (
        "{x: [6, 5]}",
        "- {op: unflatten, dim: 1, sizes: [2, -1]}\n- {op: transpose, dims: [1, 2]}\n- {op: flatten, start: 1, end: 2}",
        lambda m, x: x.view(-1, 2, 3, 5).transpose(1, 2).reshape(-1, 6, 5),
    ),
    "mean_sum": (
        "{x: [3, 4, 5]}",
        "- {op: mean, dims: [2, 3]}\n- {op: sum, dims: [1], keepdim: true}",
        lambda m, x: x.mean([2, 3]).sum(1, True),
    ),
    "arithmetic": (
        "{a: [3], b: [3]}",
        "- {id: d, op: div, from: [a, b]}\n- {id: s, op: sub, from: [d, a]}\n- {op: mul, value: 0.5}\n- {op: add, value: 1}",
        lambda m, a, b: (a / b - a) * 0.5 + 1,
    ),
    "positions": (
        "{tokens: {shape: [6], dtype: int64}}",
        "- {id: pos, op: positions}\n- {id: wpe, op: embedding, num: 8, dim: 4}\n"
        "- {id: wte, op: embedding, num: 10, dim: 4, from: tokens}\n- {op: add, from: [wte, wpe]}",
        lambda m, t: m.wte(t) + m.wpe(torch.arange(6)),
    ),
    "bool_lookup": (  # bools add as a logical or; times 2 they are int64, indices of a lookup
        "{keep: {shape: [6], dtype: bool}, drop: {shape: [6], dtype: bool}}",
        "- {op: add, from: [keep, drop]}\n- {op: mul, value: 2}\n- {id: table, op: embedding, num: 3, dim: 4}",
        lambda m, keep, drop: m.table((keep | drop).long() * 2),
    ),
    "class_token": (
        "{x: [4, 8]}",
        "- {id: token, op: parameter, shape: [1, 1, 8], init: ones}\n"
        "- {op: concat, from: [token, x], dim: 1}\n- {op: select, dim: 1, index: 0}",
        lambda m, x: m.token.expand(x.shape[0], 1, 8)[:, 0],
    ),
}


def _spec(inputs: str, layers: str) -> str:
    return f"nncompile: 1\nname: op\ninputs: {inputs}\nlayers:\n{_layers(layers)}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_agrees_with_torch(case: str, write_spec):
    inputs, layers, reference = CASES[case]
    path = write_spec(_spec(inputs, layers))
    analysis = compiler.analyze(path)
    assert analysis.ok, analysis.diagnostics
    model = compiler.build(path).eval()
    torch.manual_seed(0)
    values = []
    for shape, dtype in model.nncompile_inputs.values():
        values.append(
            torch.randint(0, 6, (2, *shape))
            if dtype == "int64"
            else torch.rand(2, *shape) > 0.3
            if dtype == "bool"
            else torch.randn(2, *shape)
        )
    with torch.no_grad():
        assert torch.allclose(model(*values), reference(model, *values), atol=1e-6)
    ShapeProp(model).propagate(*values)
    check_fx_shapes(model, analysis.graph, batch=2)
    assert analysis.graph.total_params == sum(p.numel() for p in model.parameters())
    with FlopCounterMode(display=False) as counter, sdpa_kernel([SDPBackend.MATH]):
        model(*[v[:1] for v in values])  # the math kernel's matmuls are counted; fused CPU kernels are not
    assert counter.get_total_flops() == 2 * analysis.graph.total_macs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(model)
    exported = torch.export.export(model, tuple(values)).module()
    with torch.no_grad():
        assert torch.allclose(scripted(*values), model(*values), atol=1e-6)
        assert torch.allclose(exported(*values), model(*values), atol=1e-6)


def test_stochastic_depth_drops_rows_like_torchvision():
    from nncompile.compiler.nn import StochasticDepth as Ours
    from torchvision.ops import StochasticDepth

    x = torch.randn(64, 3, 4)
    for mode in ("row", "batch"):
        torch.manual_seed(3)
        expected = StochasticDepth(0.4, mode)(x)
        torch.manual_seed(3)
        assert torch.equal(Ours(0.4, mode)(x), expected)
        assert torch.equal(Ours(0.4, mode).eval()(x), x)


def test_symbolic_reshape_scripts_and_exports(write_spec, tmp_path):
    """A reshape over a symbolic length keeps the batch and the one -1 at run time, in every format."""
    from nncompile.compiler.export import export

    path = write_spec(
        "nncompile: 1\nname: r\ninputs: {x: [T, 8]}\nsizes:\n  T: {min: 2, max: 64, default: 6}\n"
        "layers:\n  - {op: reshape, shape: [-1, 2, 4]}\n"
    )
    model = compiler.build(path).eval()
    for target in ExportTarget:
        export(model, example_inputs(model), tmp_path / f"r{target.suffix}")  # verified at T=6 and T=7


@pytest.mark.parametrize(("op", "case"), DTYPE_CASES, ids=DTYPE_IDS)
def test_dtype_rules_are_torchs(op, case, write_spec):
    """Each op's dtype rule (its sample's, which test_ops holds check to) is torch's: where it gives a
    dtype, the built layer runs and gives it; where it refuses, torch refuses too (shapegen's oracle)."""
    definition = BUILTIN.get(op)
    if case.gives is not None:
        model = compiler.build(write_spec(dtype_spec(definition, case)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on half precision on CPU
            outputs = model(*example_inputs(model))
        first = outputs[0] if isinstance(outputs, tuple) else outputs
        assert str(first.dtype).removeprefix("torch.") == case.gives
        return
    shapes = [[16 if size == "T" else size for size in shape] for shape in definition.sample.inputs.values()]
    values = [
        Value(torch.zeros(2, *shapes[min(i, len(shapes) - 1)], dtype=getattr(torch, dtype)), f"x{i}", f"x{i}")
        for i, dtype in enumerate(case.dtypes)
    ]
    args = definition.sample.args if case.args is None else case.args
    with pytest.raises(Refused):
        oracle(op, dict(args), values, [])
