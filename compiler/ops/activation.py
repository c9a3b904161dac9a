"""Activations: usable as layers (`op: gelu`) and as the `activation:` shorthand on any layer."""

from __future__ import annotations

from typing import Any

from .core import FLOAT_DTYPES, Call, Choice, Float, FunctionEmit, Int, OpDef, Param, TensorType, axis_of, expect_float, expect_no_bool
from .sample import KEEPS_FLOATS, KEEPS_FLOATS_ELSE_FLOAT32, KEEPS_NUMBERS, Sample


def _elementwise(call: Call) -> TensorType:
    expect_float(call.x)
    return call.x


def _integers_kept(call: Call) -> TensorType:
    """relu and relu6 take integers too, and keep their dtype (not bools)."""
    expect_no_bool(call.x)
    return call.x


def _integers_to_float(call: Call) -> TensorType:
    """sigmoid and tanh take integers too, and give float32, as torch does."""
    return call.x if call.x.dtype in FLOAT_DTYPES else TensorType(call.x.shape, "float32", call.x.batched)


def _along_dim(call: Call) -> TensorType:
    expect_float(call.x)
    axis_of(call.args["dim"], call.x, "dim")
    return call.x


def _activation(
    name: str,
    target: str,
    params: tuple[Param, ...] = (),
    infer=_elementwise,
    dtypes: dict[str, str | None] = KEEPS_FLOATS,
    sample_args: dict[str, Any] | None = None,
) -> OpDef:
    """An activation, sampled on a [T, 8] sequence (with `sample_args`, its dtype rule `dtypes`)."""
    return OpDef(
        name=name,
        doc=f"{name} activation ({target.replace(':', '.')})",
        params=params,
        infer=infer,
        emit=FunctionEmit(target, lambda call: dict(call.args)),
        category="activation",
        unbatched=True,
        export_limits=(),
        view=False,
        sample=Sample({"x": ("T", 8)}, dtypes, sample_args or {}),
    )


OPS = (
    _activation("relu", "torch:relu", infer=_integers_kept, dtypes=KEEPS_NUMBERS),
    _activation("sigmoid", "torch:sigmoid", infer=_integers_to_float, dtypes=KEEPS_FLOATS_ELSE_FLOAT32),
    _activation("tanh", "torch:tanh", infer=_integers_to_float, dtypes=KEEPS_FLOATS_ELSE_FLOAT32),
    _activation("gelu", "torch.nn.functional:gelu", (Choice("approximate", ("none", "tanh"), "none"),)),
    _activation("silu", "torch.nn.functional:silu"),
    _activation("leaky_relu", "torch.nn.functional:leaky_relu", (Float("negative_slope", 0.01),)),
    _activation("elu", "torch.nn.functional:elu", (Float("alpha", 1.0),)),
    _activation("hardswish", "torch.nn.functional:hardswish"),
    _activation("hardsigmoid", "torch.nn.functional:hardsigmoid"),
    _activation("relu6", "torch.nn.functional:relu6", infer=_integers_kept, dtypes=KEEPS_NUMBERS),
    _activation("mish", "torch.nn.functional:mish"),
    _activation(
        "softplus",
        "torch.nn.functional:softplus",
        (Param("beta", {"type": "number", "exclusiveMinimum": 0}, 1.0), Float("threshold", 20.0)),
        sample_args={"beta": 2.0},
    ),
    _activation("softmax", "torch.nn.functional:softmax", (Int("dim", -1),), _along_dim, sample_args={"dim": -1}),
    _activation("log_softmax", "torch.nn.functional:log_softmax", (Int("dim", -1),), _along_dim, sample_args={"dim": 1}),
)
