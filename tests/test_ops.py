"""Per-op shape rules (good cases and failing cases, straight from each op's definition) and each op's
dtype rule (its sample's), through the whole check path."""

from __future__ import annotations

import pytest
from nncompile.compiler.ops import BUILTIN, Call, ShapeError, TensorType
from op_samples import DTYPE_CASES, DTYPE_IDS, dtype_spec

from nncompile import compiler


def infer(op: str, *shapes: tuple[int, ...], dtype: str = "float32", **args):
    """The inferred shape (a tuple of shapes for several outputs); a shape given as ("nobatch", shape)
    is a value without a batch dimension."""
    definition = BUILTIN.get(op)
    values = {p.name: args.pop(p.name, p.default) for p in definition.params}
    assert not args, f"unknown args {args}"
    types = tuple(TensorType(s[1], dtype, batched=False) if s and s[0] == "nobatch" else TensorType(s, dtype) for s in shapes)
    result = definition.infer(Call(values, types))
    return tuple(t.shape for t in result) if isinstance(result, tuple) else result.shape


GOOD = [
    ("linear", [(5,)], {"out": 3}, (3,)),
    ("linear", [(7, 5)], {"out": 3}, (7, 3)),
    ("conv2d", [(3, 32, 32)], {"out": 8, "kernel": 3}, (8, 30, 30)),
    ("conv2d", [(3, 32, 32)], {"out": 8, "kernel": 3, "stride": 2, "padding": 1}, (8, 16, 16)),
    ("conv2d", [(3, 32, 32)], {"out": 8, "kernel": [3, 5], "padding": "same"}, (8, 32, 32)),
    ("conv2d", [(4, 9, 9)], {"out": 4, "kernel": 3, "dilation": 2, "groups": 4}, (4, 5, 5)),
    ("conv1d", [(2, 10)], {"out": 4, "kernel": 3, "stride": 2}, (4, 4)),
    ("maxpool2d", [(3, 7, 7)], {"kernel": 2}, (3, 3, 3)),
    ("maxpool2d", [(3, 7, 7)], {"kernel": 2, "ceil_mode": True}, (3, 4, 4)),
    ("avgpool2d", [(3, 112, 112)], {"kernel": 3, "stride": 2, "padding": 1}, (3, 56, 56)),
    ("adaptive_avgpool2d", [(3, 7, 7)], {"size": [2, 1]}, (3, 2, 1)),
    ("flatten", [(3, 4, 5)], {}, (60,)),
    ("flatten", [(3, 4, 5)], {"start": 2}, (3, 20)),
    ("reshape", [(3, 4, 5)], {"shape": [-1, 5]}, (12, 5)),
    ("permute", [(3, 4, 5)], {"dims": [0, 2, 3, 1]}, (4, 5, 3)),
    ("add", [(3, 4, 4), (3, 1, 1)], {}, (3, 4, 4)),
    ("concat", [(3, 4, 4), (5, 4, 4)], {}, (8, 4, 4)),
    ("layernorm", [(7, 5)], {"dims": 2}, (7, 5)),
    ("groupnorm", [(6, 4)], {"groups": 3}, (6, 4)),
    ("softmax", [(7, 5)], {"dim": 1}, (7, 5)),
    ("relu6", [(4,)], {}, (4,)),
    ("hardsigmoid", [(4, 2)], {}, (4, 2)),
    ("mish", [(4,)], {}, (4,)),
    ("softplus", [(4,)], {"beta": 2.0}, (4,)),
    ("conv_transpose2d", [(8, 7, 7)], {"out": 4, "kernel": 2, "stride": 2}, (4, 14, 14)),
    ("conv_transpose2d", [(8, 7, 7)], {"out": 4, "kernel": 3, "stride": 2, "padding": 1, "output_padding": 1}, (4, 14, 14)),
    ("conv_transpose1d", [(4, 10)], {"out": 2, "kernel": 4, "stride": 2, "padding": 1}, (2, 20)),
    ("maxpool1d", [(3, 9)], {"kernel": 2}, (3, 4)),
    ("avgpool1d", [(3, 9)], {"kernel": 3, "stride": 1, "padding": 1}, (3, 9)),
    ("adaptive_avgpool1d", [(3, 9)], {"size": 1}, (3, 1)),
    ("upsample", [(3, 5, 6)], {"scale": 2}, (3, 10, 12)),
    ("upsample", [(3, 5, 6)], {"scale": 1.5, "mode": "bilinear"}, (3, 7, 9)),
    ("upsample", [(3, 5)], {"size": 8, "mode": "linear", "align_corners": True}, (3, 8)),
    ("layernorm2d", [(6, 4, 4)], {}, (6, 4, 4)),
    ("stochastic_depth", [(6, 4, 4)], {"p": 0.1}, (6, 4, 4)),
    ("matmul", [(2, 3, 4), (2, 4, 5)], {}, (2, 3, 5)),
    ("matmul", [(3, 4), ("nobatch", (4, 6))], {}, (3, 6)),
    ("scaled_dot_product_attention", [(2, 5, 8), (2, 7, 8), (2, 7, 6)], {}, (2, 5, 6)),
    ("scaled_dot_product_attention", [(2, 5, 8), (2, 5, 8), (2, 5, 8)], {"causal": True}, (2, 5, 8)),
    ("multihead_attention", [(5, 8)], {"heads": 2}, (5, 8)),
    ("multihead_attention", [(5, 8), (7, 6), (7, 4)], {"heads": 4}, (5, 8)),
    ("multihead_attention", [(5, 8), (7, 6), (7, 4), (7,)], {"heads": 4}, (5, 8)),
    ("shifted_window_attention", [(9, 10, 8)], {"heads": 2, "window": 7, "shift": 3}, (9, 10, 8)),
    ("pad", [(3, 5, 7)], {"amounts": [1, 2, 0, 3]}, (3, 8, 10)),
    ("pad", [(3, 5, 7)], {"amounts": [-1, 0]}, (3, 5, 6)),
    ("pad", [(5,)], {"amounts": [4, 4], "mode": "reflect"}, (13,)),
    ("pad", [(5,)], {"amounts": [1, 1], "value": 65504.0, "dtype": "float16"}, (7,)),
    ("pad", [(5,)], {"amounts": [1, 1], "value": -(2.0**31), "dtype": "int32"}, (7,)),
    ("pad", [(3, 5)], {"amounts": [5, 5], "mode": "circular"}, (3, 15)),
    ("pad", [(3, 5, 7), (4, 9, 8)], {}, (3, 9, 8)),
    ("split", [(12, 3)], {"size": 4}, ((4, 3), (4, 3), (4, 3))),
    ("split", [(12, 3)], {"size": 5}, ((5, 3), (5, 3), (2, 3))),
    ("split", [(12, 3)], {"sizes": [2, 10]}, ((2, 3), (10, 3))),
    ("chunk", [(6, 4)], {"chunks": 2, "dim": 2}, ((6, 2), (6, 2))),
    ("chunk", [(5,)], {"chunks": 4}, ((2,), (2,), (1,))),
    ("select", [(17, 8)], {"dim": 1, "index": 0}, (8,)),
    ("slice", [(17, 8)], {"dim": 1, "start": 1}, (16, 8)),
    ("slice", [(10,)], {"dim": 1, "start": -4, "end": -1, "step": 2}, (2,)),
    ("transpose", [(3, 4, 5)], {"dims": [1, 3]}, (5, 4, 3)),
    ("unflatten", [(12, 5)], {"dim": 1, "sizes": [2, -1]}, (2, 6, 5)),
    ("mean", [(3, 4, 5)], {"dims": [2, 3]}, (3,)),
    ("sum", [(3, 4, 5)], {"dims": [-1], "keepdim": True}, (3, 4, 1)),
    ("positions", [(9,)], {}, (9,)),
    ("parameter", [], {"shape": [1, 1, 8]}, (1, 1, 8)),
    ("sub", [(3, 4), (3, 4)], {}, (3, 4)),
    ("div", [(3, 4)], {"value": 2.0}, (3, 4)),
    ("add", [(3, 4), ("nobatch", (1, 4))], {}, (3, 4)),
    ("concat", [("nobatch", (1, 1, 8)), (16, 8)], {}, (17, 8)),
    ("identity", [(3,)], {}, (3,)),
    ("dropout", [(3,)], {}, (3,)),
    ("embedding", [(6,)], {"num": 10, "dim": 4}, (6, 4)),
    ("batchnorm1d", [(4, 7)], {}, (4, 7)),
    ("batchnorm2d", [(4, 7, 7)], {}, (4, 7, 7)),
    ("relu", [(3,)], {}, (3,)),
    ("sigmoid", [(3,)], {}, (3,)),
    ("tanh", [(3,)], {}, (3,)),
    ("gelu", [(3,)], {"approximate": "tanh"}, (3,)),
    ("silu", [(3,)], {}, (3,)),
    ("leaky_relu", [(3,)], {}, (3,)),
    ("elu", [(3,)], {}, (3,)),
    ("hardswish", [(3,)], {}, (3,)),
    ("log_softmax", [(3,)], {}, (3,)),
    ("mul", [(3, 4), (3, 1)], {}, (3, 4)),
]


@pytest.mark.parametrize(("op", "shapes", "args", "expected"), GOOD, ids=[f"{g[0]}-{i}" for i, g in enumerate(GOOD)])
def test_inferred_shape(op, shapes, args, expected):
    args = dict(args)
    dtype = args.pop("dtype", "int64" if op in ("embedding", "positions") else "float32")
    assert infer(op, *shapes, dtype=dtype, **args) == expected


BAD = [
    ("conv2d", [(3, 32)], {"out": 8, "kernel": 3}, "rank 3"),
    ("conv2d", [(3, 2, 2)], {"out": 8, "kernel": 3}, "too small"),
    ("conv2d", [(3, 8, 8)], {"out": 8, "kernel": 3, "groups": 2}, "groups=2 must divide"),
    ("conv2d", [(3, 8, 8)], {"out": 8, "kernel": 3, "stride": 2, "padding": "same"}, "needs stride 1"),
    ("maxpool2d", [(3, 8, 8)], {"kernel": 2, "padding": 2}, "at most half"),
    ("linear", [()], {"out": 3}, "feature dimension"),
    ("linear", [(3,)], {"out": 3, "dtype": "int64"}, "floating-point"),
    ("embedding", [(3,)], {"num": 5, "dim": 2}, "integer indices"),
    ("add", [(3, 4), (3, 5)], {}, "do not broadcast"),
    ("add", [(3, 4), (4, 4)], {}, "do not broadcast"),
    ("concat", [(3, 4), (3, 5)], {"dim": 1}, "must match except along dim 1"),
    ("flatten", [(3, 4)], {"start": 0}, "batch dimension"),
    ("reshape", [(3, 4)], {"shape": [5, -1]}, "cannot reshape"),
    ("permute", [(3, 4)], {"dims": [1, 0, 2]}, "keeps the batch"),
    ("softmax", [(3,)], {"dim": 3}, "out of range"),
    ("groupnorm", [(6, 4)], {"groups": 4}, "must divide"),
    ("conv_transpose2d", [(8, 7, 7)], {"out": 4, "kernel": 3, "stride": 2, "output_padding": 2}, "smaller than the stride"),
    ("conv_transpose2d", [(6, 7, 7)], {"out": 4, "kernel": 2, "groups": 4}, "groups=4 must divide"),
    ("maxpool1d", [(3, 9, 9)], {"kernel": 2}, "rank 2"),
    ("upsample", [(3, 5, 6)], {}, "exactly one of"),
    ("upsample", [(3, 5, 6)], {"scale": 2, "align_corners": True}, "linear modes"),
    ("upsample", [(3, 5, 6)], {"scale": 2, "mode": "linear"}, "rank 2"),
    ("layernorm2d", [(6, 4)], {}, "rank 3"),
    ("matmul", [(2, 3, 4), (2, 5, 4)], {}, "inner sizes differ"),
    ("matmul", [(4,), (4, 3)], {}, "batch dimension would move"),
    ("scaled_dot_product_attention", [(2, 5, 8), (2, 7, 6), (2, 7, 6)], {}, "do not fit"),
    ("scaled_dot_product_attention", [(2, 5, 8), (3, 5, 8), (3, 5, 8)], {}, "do not broadcast"),
    ("scaled_dot_product_attention", [(2, 5, 8), (2, 5, 8), (2, 5, 8), (5, 5)], {"causal": True}, "no mask"),
    ("scaled_dot_product_attention", [(2, 5, 8), (2, 5, 8), (2, 5, 8), (5, 4)], {}, "do not broadcast"),
    ("multihead_attention", [(5, 8)], {"heads": 3}, "heads=3 must divide"),
    ("shifted_window_attention", [(7, 7, 8)], {"heads": 3, "window": 7}, "heads=3 must divide"),
    ("pad", [(3, 5)], {}, "give `amounts`"),
    ("pad", [(3, 5)], {"amounts": [1, 2, 3]}, "in pairs"),
    ("pad", [(3, 5)], {"amounts": [1, 1, 1, 1, 1, 1]}, "the batch is never padded"),
    ("pad", [(3, 5)], {"amounts": [-3, -2]}, "leave nothing"),
    ("pad", [(3, 1)], {"amounts": [3, -2]}, "crops more than the size"),
    ("pad", [(3, 5)], {"amounts": [5, 0], "mode": "reflect"}, "smaller than the size"),
    ("pad", [(3, 5)], {"amounts": [6, 0], "mode": "circular"}, "wrap around once"),
    ("pad", [(3, 5)], {"amounts": [-6, 3], "mode": "circular"}, "wrap around once"),
    ("pad", [(3, 5)], {"amounts": [1, 1], "value": 1.0e39}, "does not fit"),
    ("pad", [(3, 5)], {"amounts": [1, 1], "mode": "replicate", "value": 1.0}, "takes no fill value"),
    ("pad", [(3, 4, 5, 6)], {"amounts": [1, 1], "mode": "replicate"}, "samples of 1 or 2 dims"),
    ("pad", [(3, 5)], {"amounts": [1, 1], "mode": "reflect", "dtype": "bool"}, "bool values"),
    ("pad", [(3, 9, 8), (4, 5, 7)], {}, "cannot shrink"),
    ("pad", [(3, 5, 7), (4, 9, 8)], {"mode": "reflect"}, "takes no amounts"),
    ("pad", [(3, 5)], {"amounts": [1, 1], "value": 70000.0, "dtype": "float16"}, "does not fit"),
    ("shifted_window_attention", [(7, 8)], {"heads": 2, "window": 7}, "rank 3"),
    ("shifted_window_attention", [(7, 7, 8)], {"heads": 2, "window": [65, 64]}, "over the 4,096"),
    ("shifted_window_attention", [(7, 7, 8)], {"heads": 2, "window": [7, 4], "shift": [3, 4]}, "smaller than the window"),
    ("multihead_attention", [(5, 8, 2)], {"heads": 2}, "length, features"),
    ("multihead_attention", [(5, 8), (7, 6), (6, 4)], {"heads": 2}, "same length"),
    ("multihead_attention", [(5, 8), (7, 6), (7, 4), (5,)], {"heads": 2}, "key padding mask"),
    ("multihead_attention", [(5, 8), (5, 8)], {"heads": 2}, "and then a key padding mask"),
    ("split", [(12, 3)], {}, "exactly one of 'size'"),
    ("split", [(12, 3)], {"size": 4, "sizes": [2, 10]}, "exactly one of 'size'"),
    ("split", [(12, 3)], {"sizes": [2, 9]}, "add up to 11"),
    ("select", [(17, 8)], {"dim": 1, "index": 17}, "out of range"),
    ("slice", [(17, 8)], {"dim": 1, "start": 20}, "is empty"),
    ("transpose", [(3, 4)], {"dims": [0, 1]}, "batch dimension"),
    ("unflatten", [(12, 5)], {"dim": 1, "sizes": [5, -1]}, "cannot reshape"),
    ("mean", [(3, 4)], {"dims": [1, -2]}, "twice"),
    ("concat", [("nobatch", (2, 1, 8)), (16, 8)], {}, "size 1 in front"),
    ("add", [(3, 4), ("nobatch", (5, 3, 4))], {}, "batch dimension"),
]


@pytest.mark.parametrize(("op", "shapes", "args", "message"), BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_shape_error(op, shapes, args, message):
    dtype = args.pop("dtype", "float32")
    with pytest.raises(ShapeError, match=message):
        infer(op, *shapes, dtype=dtype, **args)


def test_embedding_on_indices():
    assert infer("embedding", (6,), dtype="int64", num=10, dim=4) == (6, 4)


@pytest.mark.parametrize(("op", "case"), DTYPE_CASES, ids=DTYPE_IDS)
def test_dtype_rule(op, case, write_spec):
    """check gives each op's output the dtype its sample's rule says, or refuses that layer (the rule
    is held to torch by test_ops_torch)."""
    text = dtype_spec(BUILTIN.get(op), case)
    analysis = compiler.analyze(write_spec(text))
    if case.gives is None:
        line = next(i for i, row in enumerate(text.splitlines(), 1) if '"id": "sample"' in row)
        assert [d.span.line for d in analysis.diagnostics if d.is_error] == [line], analysis.diagnostics
    else:
        assert analysis.ok, analysis.diagnostics
        assert analysis.graph.nodes["sample"].outputs[0].dtype == case.gives
