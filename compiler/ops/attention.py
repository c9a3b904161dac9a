"""Attention: matmul between two values, scaled_dot_product_attention, multihead_attention
(exactly `nn.MultiheadAttention`, batch first), and Swin's shifted_window_attention (exactly
torchvision's `ShiftedWindowAttention`).

MACs count attention's two matrix products (queries × keys, weights × values), `L·S·E + L·S·Ev` per
head and sample, also where torch's FlopCounterMode does not see them (SDPA on CPU, the fused
nn.MultiheadAttention path under no_grad).
"""

from __future__ import annotations

from typing import Any

from ..dims import Undecided, is_symbolic
from ..targets import ExportLimit, ExportTarget
from .core import (
    Bool,
    Call,
    Float,
    FunctionEmit,
    Int,
    IntOrPair,
    ModuleEmit,
    OpDef,
    Param,
    ShapeError,
    TensorType,
    broadcast,
    broadcast_shapes,
    describe_shape,
    expect_float,
    expect_no_bool,
    expect_rank,
    pair,
    same_dtype,
)
from .geometry import volume
from .sample import FLOAT32_ONLY, KEEPS_FLOATS, KEEPS_NUMBERS, DtypeCase, Sample


def _matrix(t: TensorType, what: str) -> None:
    if t.rank < 2:
        raise ShapeError(f"{what} must have at least 2 dims per sample, got {list(t.shape)}")


def _matmul_infer(call: Call) -> TensorType:
    a, b = (t.full_shape for t in call.inputs)
    expect_no_bool(call.x)
    same_dtype(call)

    def described() -> str:
        return f"{list(a)} @ {list(b)}"

    if len(a) < 2 or len(b) < 2:
        raise ShapeError(f"both inputs need at least 2 dims: {described()}")
    if "B" in (a[-1], b[-2], b[-1]) or a[-1] != b[-2]:
        raise ShapeError(f"inner sizes differ: {described()}")
    full = (*broadcast_shapes([a[:-2], b[:-2]], described), a[-2], b[-1])
    if "B" in full[1:]:
        raise ShapeError(f"the batch dimension would move: {described()}")
    batched = full[0] == "B"
    return TensorType(full[1:] if batched else full, call.x.dtype, batched)


MATMUL = OpDef(
    name="matmul",
    doc="matrix product of two values over their last two dims, broadcasting the rest (torch.matmul)",
    infer=_matmul_infer,
    emit=FunctionEmit("torch:matmul"),
    count_macs=lambda call, y: y.numel() * call.x.full_shape[-1],
    arity=(2, 2),
    category="attention",
    unbatched=True,
    export_limits=(),
    view=False,
    sample=Sample({"x": ("T", 8), "y": (8, "T")}, KEEPS_NUMBERS, cases=(DtypeCase(("int32", "int64"), None),)),
)


def _sdpa_infer(call: Call) -> TensorType:
    q, k, v = call.inputs[:3]
    for t, name in ((q, "query"), (k, "key"), (v, "value")):
        expect_float(t)
        _matrix(t, f"the {name}")
    if len({q.dtype, k.dtype, v.dtype}) > 1:
        raise ShapeError(f"query, key and value must have one dtype, got {q.dtype}, {k.dtype} and {v.dtype}")
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ShapeError(
            f"query {list(q.shape)}, key {list(k.shape)} and value {list(v.shape)} do not fit: need (…, L, E), (…, S, E), (…, S, Ev)"
        )
    lead = broadcast_shapes(
        [t.full_shape[:-2] for t in (q, k, v)], lambda: f"query {list(q.full_shape)}, key {list(k.full_shape)}, value {list(v.full_shape)}"
    )  # leading dims broadcast, as in torch
    if len(call.inputs) == 4:
        if call.args["causal"]:
            raise ShapeError("a causal attention takes no mask input", "causal")
        mask = call.inputs[3]
        if mask.dtype not in ("bool", "float32", q.dtype):
            raise ShapeError(f"the mask must be bool, float32 or the query's {q.dtype}, got {mask.dtype}")
        batched = bool(lead) and lead[0] == "B"
        scores = TensorType((*lead, q.shape[-2], k.shape[-2])[1 if batched else 0 :], q.dtype, batched)
        if broadcast((scores, mask)).full_shape != scores.full_shape:
            raise ShapeError(f"the mask {list(mask.full_shape)} does not broadcast to the scores {list(scores.full_shape)}")
    full = (*lead, q.shape[-2], v.shape[-1])
    batched = bool(lead) and lead[0] == "B"
    return TensorType(full[1:] if batched else full, q.dtype, batched)


def _not_four_dims(call: Call) -> bool:
    return any(len(t.full_shape) != 4 for t in call.inputs[:3])


def _sdpa_macs(call: Call, y: TensorType) -> int:
    q, k, v = call.inputs[:3]
    return volume(y.shape[:-2]) * q.shape[-2] * k.shape[-2] * (q.shape[-1] + v.shape[-1])


SCALED_DOT_PRODUCT_ATTENTION = OpDef(
    name="scaled_dot_product_attention",
    doc="softmax(q·kᵀ·scale [+ mask]) · v over (…, L, E), (…, S, E), (…, S, Ev) and an optional mask (F.scaled_dot_product_attention)",
    params=(
        Bool("causal", False, doc="mask out keys after each query"),
        Float("dropout", 0.0, minimum=0, maximum=1, doc="on the attention weights, while training"),
        Param("scale", {"type": ["number", "null"]}, None, "default 1/sqrt(E)"),
    ),
    infer=_sdpa_infer,
    emit=ModuleEmit(
        "nncompile.compiler.nn:Attention",
        lambda call: {"dropout": call.args["dropout"], "causal": call.args["causal"], "scale": call.args["scale"]},
    ),
    count_macs=_sdpa_macs,
    arity=(3, 4),
    category="attention",
    scratch=lambda call: volume(call.inputs[0].shape[:-1]) * call.inputs[1].shape[-2],
    export_limits=(
        ExportLimit(
            ExportTarget.ONNX,
            _not_four_dims,
            "ONNX exports attention only over 4-D query, key and value ([B, heads, L, E]): reshape to heads first",
        ),
    ),
    view=False,
    sample=Sample({"q": ("T", 8), "k": ("T", 8), "v": ("T", 8)}, KEEPS_FLOATS, {"causal": True}),
)


def _mha_types(call: Call) -> tuple[TensorType, TensorType, TensorType]:
    q, k, v = call.inputs[:3] if len(call.inputs) >= 3 else call.inputs[:1] * 3
    return q, k, v


def _mha_infer(call: Call) -> TensorType:
    if len(call.inputs) == 2:
        raise ShapeError("takes one input (self-attention), or query, key and value, and then a key padding mask")
    q, k, v = _mha_types(call)
    if len(call.inputs) == 4:
        mask = call.inputs[3]
        if mask.dtype not in ("bool", q.dtype) or not mask.batched or mask.shape != (k.shape[0],):
            raise ShapeError(
                f"the key padding mask must be bool (True: ignore that key) or {q.dtype}, [length of the keys] per sample: "
                f"[{k.shape[0]}], got {describe_shape(mask)} {mask.dtype}"
            )
    for t, name in ((q, "query"), (k, "key"), (v, "value")):
        expect_float(t)
        if t.rank != 2:
            raise ShapeError(f"the {name} must be [length, features] per sample, got {list(t.shape)}")
    if k.shape[0] != v.shape[0]:
        raise ShapeError(f"keys and values must have the same length: {list(k.shape)}, {list(v.shape)}")
    if q.shape[1] % call.args["heads"]:
        raise ShapeError(f"heads={call.args['heads']} must divide the {q.shape[1]} features", "heads")
    return q


def _mha_params(call: Call) -> int:
    q, k, v = _mha_types(call)
    e = q.shape[1]
    bias = 4 * e if call.args["bias"] else 0
    return e * e + e * k.shape[1] + e * v.shape[1] + e * e + bias


def _mha_macs(call: Call, y: TensorType) -> int:
    q, k, v = _mha_types(call)
    (length, e), source = q.shape, k.shape[0]
    projections = length * e * e + source * e * (k.shape[1] + v.shape[1]) + length * e * e
    return projections + 2 * length * source * e


MULTIHEAD_ATTENTION = OpDef(
    name="multihead_attention",
    doc="multi-head attention, exactly nn.MultiheadAttention (batch first); one input is self-attention, three are query, "
    "key, value, and a fourth is a key padding mask ([S] per sample, True where a key is padding)",
    params=(
        Int("heads", minimum=1, doc="number of heads; must divide the features"),
        Float("dropout", 0.0, minimum=0, maximum=1, doc="on the attention weights, while training"),
        Bool("bias", True),
    ),
    infer=_mha_infer,
    emit=ModuleEmit(
        "torch.nn:MultiheadAttention",
        lambda call: {
            "embed_dim": _mha_types(call)[0].shape[1],
            "num_heads": call.args["heads"],
            "dropout": call.args["dropout"],
            "bias": call.args["bias"],
            "kdim": _mha_types(call)[1].shape[1],
            "vdim": _mha_types(call)[2].shape[1],
            "batch_first": True,
        },
        call_kwargs={"need_weights": False},
        select=0,
        self_inputs=3,
    ),
    count_params=_mha_params,
    count_macs=_mha_macs,
    arity=(1, 4),
    category="attention",
    scratch=lambda call: call.args["heads"] * _mha_types(call)[0].shape[0] * _mha_types(call)[1].shape[0],
    export_limits=(
        ExportLimit(
            ExportTarget.TORCHSCRIPT,
            lambda call: not call.args["bias"],
            "nn.MultiheadAttention without bias does not compile with TorchScript (a torch limitation): "
            "use bias: true, or export to .pt2 or .onnx",
        ),
    ),
    view=False,
    sample=Sample({"x": ("T", 8)}, FLOAT32_ONLY, {"heads": 2}),
)


MAX_WINDOW_TOKENS = 4096
"""The largest window (64 x 64 tokens; Swin uses 7 x 7, Swin V2 up to 24 x 24): its relative position
index, built with the module, holds 16,777,216 int64 entries (128 MiB)."""


def _window_infer(call: Call) -> TensorType:
    expect_rank(call.x, (3,), "[H, W, channels]")
    expect_float(call.x)
    if call.x.shape[2] % call.args["heads"]:
        raise ShapeError(f"heads={call.args['heads']} must divide the {call.x.shape[2]} channels", "heads")
    if any(shift >= window for shift, window in zip(pair(call.args["shift"]), pair(call.args["window"]))):
        raise ShapeError(f"the shift {call.args['shift']} must be smaller than the window {call.args['window']}", "shift")
    tokens = volume(pair(call.args["window"]))
    if tokens > MAX_WINDOW_TOKENS:  # the module holds a relative position index of tokens² int64 entries
        raise ShapeError(
            f"a window of {tokens:,} tokens is over the {MAX_WINDOW_TOKENS:,} whose relative position index "
            f"({tokens * tokens:,} entries) nncompile builds",
            "window",
        )
    return call.x


def _window_params(call: Call) -> int:
    c, (wh, ww) = call.x.shape[2], pair(call.args["window"])
    biases = 3 * c * call.args["qkv_bias"] + c * call.args["proj_bias"]
    return 4 * c * c + biases + (2 * wh - 1) * (2 * ww - 1) * call.args["heads"]


def windows_along(size: Any, window: int) -> Any:
    """How many windows cover `size` once it is padded to whole windows (a Dim for a symbolic size)."""
    return (size + window - 1) // window


def _one_window_somewhere(call: Call) -> bool:
    """True if the padded map is a single window along some dim at some sizes and not at others (the
    module then shifts or not, a branch the ONNX graph keeps as traced)."""
    for size, window in zip(call.x.shape[:2], pair(call.args["window"])):
        try:
            bool(windows_along(size, window) <= 1)
        except Undecided:
            return True
    return False


def _window_macs(call: Call, y: TensorType) -> int:
    """Over the map padded to whole windows: the qkv and output projections, and attention's two
    products within each window of n tokens (2·n·C per token)."""
    (h, w, c), (wh, ww) = call.x.shape, pair(call.args["window"])
    tokens = windows_along(h, wh) * wh * windows_along(w, ww) * ww
    return tokens * c * (4 * c + 2 * wh * ww)


SHIFTED_WINDOW_ATTENTION = OpDef(
    name="shifted_window_attention",
    doc="Swin's window attention over [H, W, C] with a relative position bias table, windows shifted by `shift`; "
    "exactly torchvision's ShiftedWindowAttention (qkv, proj, relative_position_bias_table, relative_position_index)",
    params=(
        Int("heads", minimum=1, doc="number of heads; must divide the channels"),
        IntOrPair("window", minimum=1, doc="window size (torchvision's window_size)"),
        IntOrPair("shift", 0, doc="cyclic shift, smaller than the window; 0 where the padded map fits one window"),
        Float("attention_dropout", 0.0, minimum=0, maximum=1, doc="on the attention weights, while training"),
        Float("dropout", 0.0, minimum=0, maximum=1, doc="on the output, while training"),
        Bool("qkv_bias", True),
        Bool("proj_bias", True),
    ),
    infer=_window_infer,
    emit=ModuleEmit(
        "nncompile.compiler.nn:ShiftedWindowAttention",
        lambda call: {
            "dim": call.x.shape[2],
            "window_size": list(pair(call.args["window"])),
            "shift_size": list(pair(call.args["shift"])),
            "num_heads": call.args["heads"],
            "qkv_bias": call.args["qkv_bias"],
            "proj_bias": call.args["proj_bias"],
            "attention_dropout": call.args["attention_dropout"],
            "dropout": call.args["dropout"],
        },
    ),
    count_params=_window_params,
    count_macs=_window_macs,
    category="attention",
    export_limits=(
        ExportLimit(
            ExportTarget.EXPORT,
            lambda call: is_symbolic(call.x.shape[:2]),
            "window attention over a symbolic size: torch.export fixes the size where the window padding and shift "
            "are decided (fix the sizes with --set)",
        ),
        ExportLimit(
            ExportTarget.ONNX,
            _one_window_somewhere,
            "window attention whose map is one window at some sizes of its range and more at others: ONNX keeps the "
            "shift decided at the example size (fix the sizes with --set)",
        ),
    ),
    view=False,
    sample=Sample({"x": ("T", "T", 8)}, FLOAT32_ONLY, {"heads": 2, "window": 4, "shift": 2}),
)

OPS = (MATMUL, SCALED_DOT_PRODUCT_ATTENTION, MULTIHEAD_ATTENTION, SHIFTED_WINDOW_ATTENTION)
