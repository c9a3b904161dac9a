"""Specs from every builtin op's sample (`OpDef.sample`), for the tests that hold each op's facts to
torch: its export limits (`test_targets`), dtype rule (`test_ops`, `test_ops_torch`), counts and
view-ness (`test_op_registry`); and a few constructs beside the export limits (`EDGES`).
Sizes named `T` are symbolic (`T` from 8 to 64, default 16); `--set T=16` fixes them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from nncompile.compiler.ops import BUILTIN, OpDef
from nncompile.compiler.ops.sample import DTYPES, DtypeCase

SIZES = "sizes:\n  T: {min: 8, max: 64, default: 16}\n"
SAMPLES = {op.name: op for op in BUILTIN if op.sample is not None}
"""The builtin ops that have a sample (every one: `test_op_registry` requires it)."""

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


def spec(name: str, inputs: Mapping[str, tuple[Sequence[Any], str]], layers: Sequence[Mapping[str, Any]], outputs: str = "") -> str:
    """A spec with these inputs (per-sample shape, dtype) and layers; `outputs` as written, if given."""
    declared = ", ".join(f"{key}: {{shape: {json.dumps(list(shape))}, dtype: {dtype}}}" for key, (shape, dtype) in inputs.items())
    body = "".join(f"  - {json.dumps(layer)}\n" for layer in layers)  # JSON is YAML's flow style
    tail = f"outputs: {outputs}\n" if outputs else ""
    return f"nncompile: 1\nname: sample_{name}\ninputs: {{{declared}}}\n{SIZES}layers:\n{body}{tail}"


def sample_layer(op: OpDef, inputs: Sequence[str], args: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The sample's layer, `sample`, reading `inputs` in order, with `args` (None: the sample's)."""
    layer = {"id": "sample", "op": op.name, **(op.sample.args if args is None else args)}
    return layer | ({"from": list(inputs)} if len(inputs) > 1 else {})


def op_spec(op: OpDef) -> str:
    """The op's sample as a spec."""
    inputs = {key: (shape, op.sample.dtype) for key, shape in op.sample.inputs.items()}
    return spec(op.name, inputs, [sample_layer(op, list(inputs)), *op.sample.then])


def sample_spec(name: str) -> str:
    """A builtin op's sample, or an edge case, as a spec."""
    if name not in EDGES:
        return op_spec(SAMPLES[name])
    inputs, layers = EDGES[name]
    body = "\n".join(f"  {line}" for line in layers.splitlines())
    return f"nncompile: 1\nname: sample_{name}\ninputs: {inputs}\n{SIZES}layers:\n{body}\n"


def dtype_cases(op: OpDef) -> list[DtypeCase]:
    """The op's dtype rule as cases: inputs all of each dtype it gives (`Sample.dtypes`; `test_op_registry`
    requires all seven), then `Sample.cases`."""
    count = len(op.sample.inputs)
    given = [DtypeCase((dtype,) * count, op.sample.dtypes[dtype]) for dtype in DTYPES if dtype in op.sample.dtypes]
    return given + list(op.sample.cases)


def dtype_spec(op: OpDef, case: DtypeCase) -> str:
    """The sample's layer alone, on inputs of the case's dtypes, returning every output of it."""
    shapes = list(op.sample.inputs.values())
    inputs = {f"x{i}": (shapes[min(i, len(shapes) - 1)], dtype) for i, dtype in enumerate(case.dtypes)}
    return spec(op.name, inputs, [sample_layer(op, list(inputs), case.args)], outputs="[sample.*]")


DTYPE_CASES = [(op.name, case) for op in SAMPLES.values() for case in dtype_cases(op)]
DTYPE_IDS = [f"{name}-{'-'.join(case.dtypes)}-{i}" for i, (name, case) in enumerate(DTYPE_CASES)]
