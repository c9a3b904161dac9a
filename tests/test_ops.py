"""Per-op shape rules: good cases and failing cases, straight from each op's definition."""

from __future__ import annotations

import pytest

from compiler.ops import BUILTIN, Call, ShapeError, TensorType


def infer(op: str, *shapes: tuple[int, ...], dtype: str = "float32", **args) -> tuple[int, ...]:
    definition = BUILTIN.get(op)
    values = {p.name: args.pop(p.name, p.default) for p in definition.params}
    assert not args, f"unknown args {args}"
    return definition.infer(Call(values, tuple(TensorType(s, dtype) for s in shapes))).shape


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
]


@pytest.mark.parametrize(("op", "shapes", "args", "expected"), GOOD, ids=[f"{g[0]}-{i}" for i, g in enumerate(GOOD)])
def test_inferred_shape(op, shapes, args, expected):
    assert infer(op, *shapes, **args) == expected


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
    ("groupnorm", [(2, 1, 1)], {"groups": 2}, "one value per sample"),
]


@pytest.mark.parametrize(("op", "shapes", "args", "message"), BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_shape_error(op, shapes, args, message):
    dtype = args.pop("dtype", "float32")
    with pytest.raises(ShapeError, match=message):
        infer(op, *shapes, dtype=dtype, **args)


def test_embedding_on_indices():
    assert infer("embedding", (6,), dtype="int64", num=10, dim=4) == (6, 4)
