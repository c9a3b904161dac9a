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


DTYPE_RULES: list[tuple[str, tuple[str, ...], dict, str | None]] = [
    ("add", ("bool", "bool"), {}, "bool"),
    ("add", ("bool",), {"value": 1}, "int64"),
    ("add", ("bool",), {"value": 0.5}, "float32"),
    ("add", ("bool", "int32"), {}, "int32"),
    ("add", ("bool", "int32", "float16"), {}, "float16"),
    ("add", ("int32",), {"value": 1}, "int32"),
    ("add", ("int32",), {"value": 2.0}, "float32"),
    ("add", ("float16",), {"value": 0.5}, "float16"),
    ("add", ("float16", "bfloat16"), {}, "float32"),
    ("add", ("int64", "bfloat16"), {}, "bfloat16"),
    ("mul", ("bool", "bool"), {}, "bool"),
    ("mul", ("bool",), {"value": 2}, "int64"),
    ("mul", ("bool", "int32"), {}, "int32"),
    ("mul", ("bool", "float64"), {}, "float64"),
    ("sub", ("bool", "bool"), {}, None),
    ("sub", ("bool", "float32"), {}, None),
    ("sub", ("int64", "bool"), {}, None),
    ("sub", ("bool",), {"value": 1}, None),
    ("sub", ("int32", "int64"), {}, "int64"),
    ("div", ("bool", "bool"), {}, "float32"),
    ("div", ("bool",), {"value": 2}, "float32"),
    ("div", ("int64",), {"value": 2}, "float32"),
    ("div", ("float64", "int32"), {}, "float64"),
    ("concat", ("bool", "int32"), {}, "int32"),
    ("concat", ("bool", "bool"), {}, "bool"),
    ("concat", ("bool", "float16"), {}, "float16"),
    ("concat", ("int32", "int64", "bool"), {}, "int64"),
    ("relu", ("bool",), {}, None),
    ("relu6", ("bool",), {}, None),
    ("relu", ("int32",), {}, "int32"),
    ("relu6", ("int64",), {}, "int64"),
    ("sigmoid", ("bool",), {}, "float32"),
    ("tanh", ("int64",), {}, "float32"),
    ("gelu", ("int64",), {}, None),
    ("softmax", ("bool",), {}, None),
    ("matmul", ("bool", "bool"), {}, None),
    ("matmul", ("int64", "int64"), {}, "int64"),
    ("matmul", ("int32", "int64"), {}, None),
    ("embedding", ("bool",), {"num": 10, "dim": 4}, None),
    ("embedding", ("int32",), {"num": 10, "dim": 4}, "float32"),
    ("embedding", ("float32",), {"num": 10, "dim": 4}, None),
    ("sum", ("bool",), {"dims": [1]}, "int64"),
    ("sum", ("int32",), {"dims": [1]}, "int64"),
    ("sum", ("float16",), {"dims": [1]}, "float16"),
    ("mean", ("int64",), {"dims": [1]}, None),
    ("mean", ("bool",), {"dims": [1]}, None),
    ("pad", ("bool",), {"amounts": [1, 1]}, "bool"),
    ("pad", ("bool",), {"amounts": [1, 1], "mode": "reflect"}, None),
    ("pad", ("bool",), {"amounts": [1, 1], "mode": "circular"}, "bool"),
    ("select", ("bool",), {"dim": 1, "index": 0}, "bool"),
    ("dropout", ("bool",), {"p": 0.5}, None),
    ("linear", ("int64",), {"out": 3}, None),
    ("layernorm", ("bool",), {}, None),
]
"""Dtype rules as torch 2.14 has them, on batched inputs of `DTYPE_SHAPES` (default [4, 4]): an op,
its inputs' dtypes, its arguments and the output's dtype (None: torch refuses). `test_ops` holds
the shape rules to it, `test_ops_torch` holds it to torch."""

DTYPE_SHAPES = {"embedding": (5,)}
DTYPE_IDS = [f"{op}-{'-'.join(dtypes)}-{i}" for i, (op, dtypes, _, _) in enumerate(DTYPE_RULES)]
