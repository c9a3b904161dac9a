"""One small spec per builtin op, for checks that must touch every op (the export-readiness table),
and a few constructs beside the table's limits.
Sizes named `T` are symbolic (`T` from 8 to 64, default 16); `--set T=16` fixes them."""

from __future__ import annotations

SIZES = "sizes:\n  T: {min: 8, max: 64, default: 16}\n"

SAMPLES: dict[str, tuple[str, str]] = {
    "conv1d": ("{x: [3, T]}", "- {op: conv1d, out: 4, kernel: 3, padding: 1}"),
    "conv2d": ("{x: [3, T, T]}", "- {op: conv2d, out: 4, kernel: 3, stride: 2, padding: 1}"),
    "conv_transpose1d": ("{x: [3, T]}", "- {op: conv_transpose1d, out: 4, kernel: 2, stride: 2}"),
    "conv_transpose2d": ("{x: [3, T, T]}", "- {op: conv_transpose2d, out: 4, kernel: 3, stride: 2, padding: 1, output_padding: 1}"),
    "maxpool1d": ("{x: [3, T]}", "- {op: maxpool1d, kernel: 3, stride: 2, ceil_mode: true}"),
    "maxpool2d": ("{x: [3, T, T]}", "- {op: maxpool2d, kernel: 3, stride: 2, padding: 1}"),
    "avgpool1d": ("{x: [3, T]}", "- {op: avgpool1d, kernel: 2}"),
    "avgpool2d": ("{x: [3, T, T]}", "- {op: avgpool2d, kernel: 2, count_include_pad: false, padding: 1}"),
    "adaptive_avgpool1d": ("{x: [3, T]}", "- {op: adaptive_avgpool1d, size: 4}"),
    "adaptive_avgpool2d": ("{x: [3, T, T]}", "- {op: adaptive_avgpool2d, size: 1}"),
    "upsample": ("{x: [3, T, T]}", "- {op: upsample, scale: 2, mode: bilinear, align_corners: false}"),
    "linear": ("{x: [T, 8]}", "- {op: linear, out: 4}"),
    "embedding": ("{x: {shape: [T], dtype: int64}}", "- {op: embedding, num: 10, dim: 4}"),
    "batchnorm1d": ("{x: [3, T]}", "- {op: batchnorm1d}"),
    "batchnorm2d": ("{x: [3, T, T]}", "- {op: batchnorm2d}"),
    "layernorm": ("{x: [T, 8]}", "- {op: layernorm}"),
    "layernorm2d": ("{x: [3, T, T]}", "- {op: layernorm2d}"),
    "groupnorm": ("{x: [4, T, T]}", "- {op: groupnorm, groups: 2}"),
    "dropout": ("{x: [T, 8]}", "- {op: dropout, p: 0.1}"),
    "stochastic_depth": ("{x: [T, 8]}", "- {op: stochastic_depth, p: 0.1}"),
    **{
        name: ("{x: [T, 8]}", f"- {{op: {name}}}")
        for name in ("relu", "sigmoid", "tanh", "gelu", "silu", "leaky_relu", "elu", "hardswish", "hardsigmoid", "relu6", "mish")
    },
    "softplus": ("{x: [T, 8]}", "- {op: softplus, beta: 2.0}"),
    "softmax": ("{x: [T, 8]}", "- {op: softmax, dim: -1}"),
    "log_softmax": ("{x: [T, 8]}", "- {op: log_softmax, dim: 1}"),
    "flatten": ("{x: [3, T, T]}", "- {op: flatten}"),
    "reshape": ("{x: [T, 8]}", "- {op: reshape, shape: [-1, 2, 4]}"),
    "unflatten": ("{x: [T, 8]}", "- {op: unflatten, dim: 2, sizes: [2, -1]}"),
    "permute": ("{x: [3, T, T]}", "- {op: permute, dims: [0, 2, 3, 1]}"),
    "transpose": ("{x: [T, 8]}", "- {op: transpose, dims: [1, 2]}"),
    "identity": ("{x: [T, 8]}", "- {op: identity}"),
    "select": ("{x: [T, 8]}", "- {op: select, dim: 1, index: 0}"),
    "slice": ("{x: [T, 8]}", "- {op: slice, dim: 1, start: 1, step: 2}"),
    "pad": ("{x: [3, T, T]}", "- {op: pad, amounts: [1, 1, 2, 0], mode: reflect}"),
    "split": ("{x: [T, 8]}", "- {id: s, op: split, size: 3, dim: 2}\n- {op: concat, from: [s.0, s.2], dim: 2}"),
    "chunk": ("{x: [T, 8]}", "- {id: c, op: chunk, chunks: 2, dim: 2}\n- {op: mul, from: [c.0, c.1]}"),
    "mean": ("{x: [3, T, T]}", "- {op: mean, dims: [2, 3]}"),
    "sum": ("{x: [T, 8]}", "- {op: sum, dims: [1], keepdim: true}"),
    "positions": (
        "{x: {shape: [T], dtype: int64}}",
        "- {id: pos, op: positions}\n- {id: wpe, op: embedding, num: 64, dim: 4}\n"
        "- {id: wte, op: embedding, num: 10, dim: 4, from: x}\n- {op: add, from: [wte, wpe]}",
    ),
    "parameter": ("{x: [T, 8]}", "- {id: scale, op: parameter, shape: [8], init: ones}\n- {op: mul, from: [x, scale]}"),
    "add": ("{x: [T, 8]}", "- {id: a, op: relu}\n- {op: add, from: [a, x]}"),
    "mul": ("{x: [T, 8]}", "- {op: mul, value: 0.5}"),
    "sub": ("{x: [T, 8]}", "- {id: a, op: tanh}\n- {op: sub, from: [x, a]}"),
    "div": ("{x: [T, 8]}", "- {op: div, value: 4}"),
    "concat": ("{x: [T, 8]}", "- {id: a, op: relu}\n- {op: concat, from: [x, a], dim: 2}"),
    "matmul": ("{x: [T, 8]}", "- {id: t, op: transpose, dims: [1, 2]}\n- {op: matmul, from: [x, t]}"),
    "scaled_dot_product_attention": ("{x: [T, 8]}", "- {op: scaled_dot_product_attention, from: [x, x, x], causal: true}"),
    "multihead_attention": ("{x: [T, 8]}", "- {op: multihead_attention, heads: 2}"),
    "shifted_window_attention": ("{x: [T, T, 8]}", "- {op: shifted_window_attention, heads: 2, window: 4, shift: 2}"),
}

EDGES: dict[str, tuple[str, str]] = {
    "maxpool2d_ceil": ("{x: [3, T, T]}", "- {op: maxpool2d, kernel: 3, stride: 2, ceil_mode: true}"),
    "avgpool1d_ceil": ("{x: [3, T]}", "- {op: avgpool1d, kernel: 3, stride: 2, ceil_mode: true}"),
    "adaptive2d": ("{x: [3, T, T]}", "- {op: adaptive_avgpool2d, size: 2}"),
    "adaptive2d_7": ("{x: [3, T, T]}", "- {op: adaptive_avgpool2d, size: [7, 1]}"),
    "sdpa4": (
        "{x: [T, 8]}",
        "- {op: reshape, shape: [-1, 2, 4]}\n- {id: t, op: transpose, dims: [1, 2]}\n"
        "- {op: scaled_dot_product_attention, from: [t, t, t], causal: true}",
    ),
    "upsample_size": ("{x: [3, T, T]}", "- {op: upsample, size: 5}"),
    "upsample_nearest": ("{x: [3, T]}", "- {op: upsample, scale: 2}"),
    "upsample_pairs": ("{x: [3, T, T]}", "- {op: upsample, scale: [2, 3]}\n- {op: upsample, size: [4, 5]}"),
    "mha_no_bias": ("{x: [T, 8]}", "- {op: multihead_attention, heads: 2, bias: false}"),
    "mha_padding_mask": (
        "{x: [T, 8], pad: {shape: [T], dtype: bool}}",
        "- {op: multihead_attention, heads: 2, from: [x, x, x, pad]}",
    ),
    "pad_to": (
        "{x: [3, T, T]}",
        "- {id: d, op: maxpool2d, kernel: 2}\n- {id: u, op: upsample, scale: 2}\n- {op: pad, from: [u, x], value: 1.0}",
    ),
    "pad_constant": ("{x: [T, 8]}", "- {op: pad, amounts: [-1, 2, 0, 1], value: -2.0}"),
    "window_at_its_size": ("{x: [T, T, 8]}", "- {op: shifted_window_attention, heads: 2, window: 16, shift: 8}"),
}
"""Constructs beside the export table's limits (some inside, some just outside)."""


def sample_spec(name: str) -> str:
    inputs, layers = SAMPLES.get(name) or EDGES[name]
    body = "\n".join(f"  {line}" for line in layers.splitlines())
    return f"nncompile: 1\nname: sample_{name}\ninputs: {inputs}\n{SIZES}layers:\n{body}\n"
