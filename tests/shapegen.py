"""Random specs with torch's verdict on each, for the two-way shape proof.

A case is made layer by layer. Each layer is drawn for the tensor it receives and is run at once by
the *oracle*: torch.nn and torch.nn.functional called directly (never nncompile), at batch 2 in
training mode. Most draws are plausible and some deliberately are not; the first layer torch refuses
ends the case. The spec describing the case is written with the language's sugar picked at random:
parameters, expressions and `--set`, blocks (with residuals and shape-reading defaults), groups,
repeats (per-copy values, `$i`, name templates), conditions that keep or skip layers, unnamed layers
named by position, activation shorthands, several inputs and outputs, every input dtype.

`compare` then holds `check` to torch in both directions: it accepts exactly the cases torch runs,
and where it accepts, every layer's shape and dtype, and the parameter and MAC counts, are torch's.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models.swin_transformer import ShiftedWindowAttention

BATCH = 2
FLOATS = ("float32", "float64", "float16", "bfloat16")
DTYPES = (*FLOATS, "int64", "int32", "bool")
ACTIVATIONS = ("relu", "sigmoid", "tanh", "gelu", "silu", "leaky_relu", "elu", "hardswish", "hardsigmoid", "relu6", "mish", "softplus")
_SHORTHANDS = ("relu", "gelu", "silu", "tanh", "sigmoid", "hardswish", "relu6")


class Refused(Exception):
    """Torch refused a layer (its message is kept)."""


@dataclass
class Value:
    """A value torch computed: the tensor, its node name in nncompile's graph, and how a spec refers to it."""

    tensor: torch.Tensor
    name: str
    ref: Any
    batched: bool = True
    bounded: bool = False
    """Integer values known to lie below a size (positions): an index out of range is then a shape error."""

    @property
    def shape(self) -> tuple[int, ...]:
        """The per-sample shape (the whole shape for a value without a batch dimension)."""
        return tuple(self.tensor.shape[1:] if self.batched else self.tensor.shape)


@dataclass
class Case:
    """A spec, the `--set` overrides it is checked with, and torch's verdict."""

    spec: dict
    overrides: dict[str, Any]
    accepted: bool = True
    refusal: str = ""
    nodes: dict[str, dict] = field(default_factory=dict)
    """Node name → its op, each output's (per-sample shape, dtype, batched), its parameters and its
    MACs per sample, for every layer torch ran."""
    ops: set[str] = field(default_factory=set)


# --- the oracle: each op as torch defines it -----------------------------------------------------------


def _pair_or_int(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def _module(case_modules: list[nn.Module], module: nn.Module) -> nn.Module:
    case_modules.append(module)
    return module


def _conv(kind: str) -> Callable:
    def run(a: dict, xs: list[torch.Tensor], mods: list) -> list[torch.Tensor]:
        x = xs[0]
        cls = {"conv1d": nn.Conv1d, "conv2d": nn.Conv2d, "conv_transpose1d": nn.ConvTranspose1d, "conv_transpose2d": nn.ConvTranspose2d}[
            kind
        ]
        options = {k: _pair_or_int(a[k]) for k in ("stride", "padding", "dilation", "groups", "output_padding") if k in a}
        module = _module(mods, cls(x.shape[1], a["out"], _pair_or_int(a["kernel"]), bias=a.get("bias", True), **options))
        return [module(x)]

    return run


def _pool(kind: str) -> Callable:
    def run(a: dict, xs: list[torch.Tensor], mods: list) -> list[torch.Tensor]:
        if kind.startswith("adaptive"):
            fn = F.adaptive_avg_pool1d if kind.endswith("1d") else F.adaptive_avg_pool2d
            return [fn(xs[0], _pair_or_int(a["size"]))]
        options = {k: _pair_or_int(a[k]) for k in ("stride", "padding", "dilation", "ceil_mode", "count_include_pad") if k in a}
        fn = {"maxpool1d": F.max_pool1d, "maxpool2d": F.max_pool2d, "avgpool1d": F.avg_pool1d, "avgpool2d": F.avg_pool2d}[kind]
        return [fn(xs[0], _pair_or_int(a["kernel"]), **options)]

    return run


def _norm(kind: str) -> Callable:
    def run(a: dict, xs: list[torch.Tensor], mods: list) -> list[torch.Tensor]:
        x = xs[0]
        eps = a.get("eps", 1e-5)
        if kind in ("batchnorm1d", "batchnorm2d"):
            cls = nn.BatchNorm1d if kind == "batchnorm1d" else nn.BatchNorm2d
            return [_module(mods, cls(x.shape[1] if x.dim() > 1 else 0, eps=eps, affine=a.get("affine", True)))(x)]
        if kind == "layernorm":
            dims = a.get("dims", 1)
            shape = tuple(x.shape[x.dim() - dims :])
            return [_module(mods, nn.LayerNorm(shape, eps=eps, elementwise_affine=a.get("affine", True), bias=a.get("bias", True)))(x)]
        if kind == "layernorm2d":
            if x.dim() != 4:
                raise Refused("layernorm2d needs [C, H, W]")
            norm = _module(mods, nn.LayerNorm(x.shape[1], eps=eps, elementwise_affine=a.get("affine", True)))
            return [norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)]
        return [_module(mods, nn.GroupNorm(a["groups"], x.shape[1] if x.dim() > 1 else 0, eps=eps, affine=a.get("affine", True)))(x)]

    return run


def _activation(name: str) -> Callable:
    def run(a: dict, xs: list[torch.Tensor], mods: list) -> list[torch.Tensor]:
        x = xs[0]
        options = {k: v for k, v in a.items()}
        fn = {
            "relu": torch.relu,
            "sigmoid": torch.sigmoid,
            "tanh": torch.tanh,
            "gelu": F.gelu,
            "silu": F.silu,
            "leaky_relu": F.leaky_relu,
            "elu": F.elu,
            "hardswish": F.hardswish,
            "hardsigmoid": F.hardsigmoid,
            "relu6": F.relu6,
            "mish": F.mish,
            "softplus": F.softplus,
            "softmax": F.softmax,
            "log_softmax": F.log_softmax,
        }[name]
        if name in ("softmax", "log_softmax"):
            options.setdefault("dim", -1)
        return [fn(x, **options)]

    return run


def _linear(a: dict, xs: list[torch.Tensor], mods: list) -> list[torch.Tensor]:
    x = xs[0]
    return [_module(mods, nn.Linear(x.shape[-1], a["out"], bias=a.get("bias", True)))(x)]


def _embedding(a: dict, xs: list[torch.Tensor], mods: list) -> list[torch.Tensor]:
    return [_module(mods, nn.Embedding(a["num"], a["dim"], padding_idx=a.get("padding_idx")))(xs[0])]


def _data_indices(x: torch.Tensor, num: int) -> torch.Tensor:
    """Token ids are data, not shape: keep them in range (positions are not: they are checked)."""
    return x.clamp(0, num - 1) if x.dtype in (torch.int32, torch.int64) and num > 0 else x  # a clamped bool would be int64


def _dropout(a: dict, xs: list[torch.Tensor], mods: list) -> list[torch.Tensor]:
    return [F.dropout(xs[0], a.get("p", 0.5), training=True)]


def _stochastic_depth(a: dict, xs: list[torch.Tensor], mods: list) -> list[torch.Tensor]:
    from torchvision.ops import stochastic_depth

    return [stochastic_depth(xs[0], a["p"], a.get("mode", "row"), training=True)]


def _upsample(a: dict, xs: list[torch.Tensor], mods: list) -> list[torch.Tensor]:
    size = _pair_or_int(a.get("size"))
    return [
        F.interpolate(xs[0], size=size, scale_factor=a.get("scale"), mode=a.get("mode", "nearest"), align_corners=a.get("align_corners"))
    ]


def _shape_op(name: str) -> Callable:
    def run(a: dict, xs: list[torch.Tensor], mods: list) -> list[torch.Tensor]:
        x = xs[0]
        if name == "flatten":
            return [torch.flatten(x, a.get("start", 1), a.get("end", -1))]
        if name == "reshape":
            return [x.reshape(x.shape[0], *a["shape"])]
        if name == "unflatten":
            return [x.unflatten(a["dim"], a["sizes"])]
        if name == "permute":
            return [x.permute(*a["dims"])]
        if name == "transpose":
            return [x.transpose(*a["dims"])]
        if name == "identity":
            return [x]
        if name == "select":
            return [x.select(a["dim"], a["index"])]
        if name == "slice":
            if not -x.dim() <= a["dim"] < x.dim():
                raise IndexError(f"dim {a['dim']} out of range")
            index = [slice(None)] * (a["dim"] % x.dim()) + [slice(a.get("start", 0), a.get("end"), a.get("step", 1))]
            return [x[tuple(index)]]
        if name == "split":
            if ("size" in a) == ("sizes" in a):
                raise Refused("split takes the size of each piece or the sizes of all, not both")
            return list(torch.split(x, a["size"] if "size" in a else a["sizes"], a.get("dim", 1)))
        if name == "chunk":
            return list(torch.chunk(x, a["chunks"], a.get("dim", 1)))
        if name in ("mean", "sum"):
            return [getattr(torch, name)(x, a["dims"], keepdim=a.get("keepdim", False))]
        raise AssertionError(name)

    return run


def _arithmetic(name: str) -> Callable:
    import operator

    fn = {"add": operator.add, "mul": operator.mul, "sub": operator.sub, "div": operator.truediv}[name]

    def run(a: dict, xs: list[torch.Tensor], mods: list) -> list[torch.Tensor]:
        if a.get("value") is not None:
            return [fn(xs[0], a["value"])]
        if len(xs) < 2:
            raise Refused(f"{name} of one input needs a value")
        result = xs[0]
        for x in xs[1:]:
            result = fn(result, x)
        return [result]

    return run


def _concat(a: dict, xs: list[torch.Tensor], mods: list, *, batched: list[bool]) -> list[torch.Tensor]:
    if any(batched) and not all(batched):
        if any(not b and (x.dim() == 0 or x.shape[0] != 1) for x, b in zip(xs, batched)):
            raise Refused("a value without a batch dimension joins a batch with size 1 in front")
        xs = [x if b else x.expand(BATCH, *x.shape[1:]) for x, b in zip(xs, batched)]
    return [torch.cat(xs, a.get("dim", 1))]


def _matmul(a: dict, xs: list[torch.Tensor], mods: list) -> list[torch.Tensor]:
    return [torch.matmul(xs[0], xs[1])]


def _sdpa(a: dict, xs: list[torch.Tensor], mods: list) -> list[torch.Tensor]:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q, k, v, *mask = xs
    with sdpa_kernel(SDPBackend.MATH):  # the reference math: its two matrix products are what the flop counter sees
        return [
            F.scaled_dot_product_attention(
                q, k, v, mask[0] if mask else None, a.get("dropout", 0.0), a.get("causal", False), scale=a.get("scale")
            )
        ]


def _mha(a: dict, xs: list[torch.Tensor], mods: list) -> list[torch.Tensor]:
    if len(xs) == 2:
        raise Refused("two inputs to multihead attention mean nothing (one, three, or three and a mask)")
    q, k, v = xs[:3] if len(xs) >= 3 else xs * 3
    mask = xs[3] if len(xs) == 4 else None
    module = _module(
        mods,
        nn.MultiheadAttention(
            q.shape[-1], a["heads"], a.get("dropout", 0.0), a.get("bias", True), kdim=k.shape[-1], vdim=v.shape[-1], batch_first=True
        ),
    )
    if q.dim() != 3 or k.dim() != 3 or v.dim() != 3:
        raise Refused("multihead attention needs [L, E] per sample")
    if mask is not None and mask.dim() != 2:
        raise Refused("a key padding mask is [S] per sample")  # torch also reads other shapes, which a spec cannot mean
    # need_weights: the explicit path, whose products the counter sees
    return [module(q, k, v, key_padding_mask=mask, need_weights=True)[0]]


def _window(a: dict, xs: list[torch.Tensor], mods: list) -> list[torch.Tensor]:
    window, shift = _two(a["window"]), _two(a.get("shift", 0))
    if any(s >= w for s, w in zip(shift, window)):
        raise Refused("a shift of a window or more is no shifted window (torchvision computes a meaningless mask)")
    channels = xs[0].shape[-1]
    module = ShiftedWindowAttention(
        channels, window, shift, a["heads"], a.get("qkv_bias", True), a.get("proj_bias", True), a.get("attention_dropout", 0.0)
    )
    return [_module(mods, module)(xs[0])]


def _pad(a: dict, xs: list[torch.Tensor], mods: list) -> list[torch.Tensor]:
    x, mode, value = xs[0], a.get("mode", "constant"), a.get("value", 0.0)
    if len(xs) == 2:  # to the second's sizes after the channels, as U-Net's up blocks (which never crop)
        if a.get("amounts") is not None or mode != "constant" or x.dim() != xs[1].dim() or x.dim() < 3:
            raise Refused("pad to a size needs two [C, …] values of one rank, no amounts, a constant")
        differences = [xs[1].shape[d] - x.shape[d] for d in range(x.dim() - 1, 1, -1)]
        if min(differences) < 0:
            raise Refused("pad to a smaller size would crop")
        return [F.pad(x, [n for d in differences for n in (d // 2, d - d // 2)], value=value)]
    amounts = a.get("amounts")
    if amounts is None or len(amounts) // 2 >= x.dim():
        raise Refused("no amounts, or amounts that would pad the batch")
    return [F.pad(x, amounts, mode=mode, **({"value": value} if mode == "constant" else {}))]


def _two(value: Any) -> list[int]:
    return [value, value] if isinstance(value, int) else list(value)


ORACLE: dict[str, Callable] = {
    **{name: _conv(name) for name in ("conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d")},
    **{name: _pool(name) for name in ("maxpool1d", "maxpool2d", "avgpool1d", "avgpool2d", "adaptive_avgpool1d", "adaptive_avgpool2d")},
    **{name: _norm(name) for name in ("batchnorm1d", "batchnorm2d", "layernorm", "layernorm2d", "groupnorm")},
    **{name: _activation(name) for name in (*ACTIVATIONS, "softmax", "log_softmax")},
    **{
        name: _shape_op(name)
        for name in (
            "flatten",
            "reshape",
            "unflatten",
            "permute",
            "transpose",
            "identity",
            "select",
            "slice",
            "split",
            "chunk",
            "mean",
            "sum",
        )
    },
    **{name: _arithmetic(name) for name in ("add", "mul", "sub", "div")},
    "linear": _linear,
    "embedding": _embedding,
    "dropout": _dropout,
    "stochastic_depth": _stochastic_depth,
    "upsample": _upsample,
    "matmul": _matmul,
    "scaled_dot_product_attention": _sdpa,
    "multihead_attention": _mha,
    "shifted_window_attention": _window,
    "pad": _pad,
}
"""Ops whose torch result depends only on their arguments and input tensors (concat, positions and
parameter, which need to know which inputs have a batch dimension, are run by the case itself)."""

_BATCH_FREE = {*ACTIVATIONS, "softmax", "log_softmax", "linear", "embedding", "layernorm", "dropout", "identity", "matmul"}
_BATCH_FREE |= {"add", "mul", "sub", "div", "concat"}
"""Ops that take a value without a batch dimension (a learnable tensor); every other op needs a batch."""
_BROADCASTING = {"add", "mul", "sub", "div", "matmul", "scaled_dot_product_attention"}
_AXES = {"flatten": ("start",), "unflatten": ("dim",), "permute": ("dims",), "transpose": ("dims",), "select": ("dim",)}
_AXES |= {"slice": ("dim",), "split": ("dim",), "chunk": ("dim",), "mean": ("dims",), "sum": ("dims",), "concat": ("dim",)}
_AXES |= {"softmax": ("dim",), "log_softmax": ("dim",)}
_RANKS = {"conv1d": 2, "conv_transpose1d": 2, "maxpool1d": 2, "avgpool1d": 2, "adaptive_avgpool1d": 2, "batchnorm2d": 3}
_RANKS |= {"conv2d": 3, "conv_transpose2d": 3, "maxpool2d": 3, "avgpool2d": 3, "adaptive_avgpool2d": 3, "layernorm2d": 3}
_RANKS |= {"shifted_window_attention": 3}


def oracle(op: str, args: dict, values: list[Value], modules: list[nn.Module]) -> list[tuple[torch.Tensor, bool]]:
    """Torch's result of `op` on `values` at batch 2, as (tensor, has a batch dimension) per output.
    Raises Refused where torch refuses, or where the call would need what a spec cannot mean: an op
    that needs a batch given a value without one, an axis argument naming the batch, or a tensor
    torch would read as unbatched (a [C, L] sample given to conv2d)."""
    batched = any(v.batched for v in values)
    if not all(v.batched for v in values) and op not in _BATCH_FREE:
        raise Refused(f"{op} needs a batch dimension")
    rank = values[0].tensor.dim()
    if op == "permute" and batched and args["dims"] and args["dims"][0] % rank != 0:
        raise Refused("permute moves the batch axis")
    for key in _AXES.get(op, ()) if op != "permute" else ():
        axes = args.get(key, -1 if key in ("end", "dim") else 1)
        for axis in axes if isinstance(axes, list) else [axes]:
            if batched and isinstance(axis, int) and -rank <= axis < rank and axis % rank == 0:
                raise Refused(f"{op}: {key} names the batch axis")
    if op in _RANKS and rank != _RANKS[op] + 1:
        raise Refused(f"{op} needs {_RANKS[op]} dims per sample")
    if op == "matmul" and ((values[0].batched and rank < 2) or (values[1].batched and values[1].tensor.dim() < 3)):
        raise Refused("matmul would contract the batch dimension")
    if op == "scaled_dot_product_attention" and any(v.batched and v.tensor.dim() < 3 for v in values[:3]):
        raise Refused("attention would run along the batch dimension")
    if "pool" in op and not values[0].tensor.dtype.is_floating_point:
        raise Refused(f"{op} of integers: torch's CPU kernels take some, its CUDA kernels none (a model must run on both)")
    if op in ("upsample", "multihead_attention") and rank < 3:
        raise Refused(f"{op} needs a batch and at least 2 dims per sample")
    tensors = [v.tensor for v in values]
    if op == "embedding" and not values[0].bounded:
        tensors[0] = _data_indices(tensors[0], args["num"])
    if op == "layernorm" and not 1 <= args.get("dims", 1) <= rank - batched:  # torch would take a slice's whole shape
        raise Refused("layernorm over more dims than a sample has")
    run = partial(_concat, batched=[v.batched for v in values]) if op == "concat" else ORACLE[op]
    try:
        outputs = run(args, tensors, modules)
    except Refused:
        raise
    except Exception as error:  # torch's verdict, whatever it raises
        raise Refused(f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}") from None
    for out in outputs:
        if op in _BROADCASTING and batched:  # torch runs these only where sizes happen to be 2
            operands = values[:3] if op == "scaled_dot_product_attention" else values
            if any(v.batched and v.tensor.dim() != out.dim() for v in operands):
                raise Refused(f"{op}: broadcasting moves the batch dimension")
            lowest = 1 if op in ("add", "mul", "sub", "div") else 3  # products broadcast only the dims before their matrices
            if any(not v.batched and v.tensor.dim() == out.dim() >= lowest and v.tensor.shape[0] != 1 for v in operands):
                raise Refused(f"{op}: a value without a batch dimension meets the batch with a size other than 1")
        if batched and (out.dim() == 0 or out.shape[0] != BATCH):
            raise Refused(f"{op} moved the batch dimension")
        if out.numel() == 0:
            raise Refused(f"{op} made an empty tensor {list(out.shape)}")  # the language refuses empty values
    if op == "reshape" and outputs[0].shape[0] != BATCH:
        raise Refused("reshape moved the batch")
    return [(out, batched) for out in outputs]


# --- drawing arguments for the tensor a layer receives -----------------------------------------------


def _maybe(rng: random.Random, args: dict, key: str, value: Any, chance: float = 0.4) -> None:
    if rng.random() < chance:
        args[key] = value


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0] or [1]


def _pair(rng: random.Random, low: int, high: int, two_d: bool) -> Any:
    return [rng.randint(low, high), rng.randint(low, high)] if two_d and rng.random() < 0.3 else rng.randint(low, high)


def _axis(rng: random.Random, rank: int, wild: bool) -> int:
    """A torch axis of a batched value with `rank` dims per sample (1..rank, sometimes negative)."""
    if wild or rank == 0:
        return rng.randint(-rank - 2, rank + 1)
    axis = rng.randint(1, rank)
    return axis - rank - 1 if rng.random() < 0.3 else axis


def _conv_args(rng: random.Random, op: str, shape: tuple, wild: bool) -> dict:
    two_d, transpose = op.endswith("2d"), "transpose" in op
    channels = shape[0] if shape else 1
    args = {"out": rng.choice([2, 4, 6, 8]) if not wild else rng.randint(1, 9), "kernel": _pair(rng, 1, 3 if not wild else 9, two_d)}
    groups = rng.choice(_divisors(channels)) if not wild else rng.randint(1, 4)
    if groups > 1 or rng.random() < 0.2:
        args["groups"] = groups
        args["out"] = groups * rng.randint(1, 3) if not wild else args["out"]
    stride = _pair(rng, 1, 2, two_d)
    _maybe(rng, args, "stride", stride)
    if transpose:
        _maybe(rng, args, "padding", _pair(rng, 0, 1, two_d))
        if rng.random() < 0.3:
            args["output_padding"] = 1 if args.get("stride", 1) != 1 or wild else 0
    else:
        padding = rng.choice([0, 1, 2, "same", "valid", [1]] + ([[1, 0]] if two_d or wild else []))
        if padding == "same" and not wild:
            args.pop("stride", None)
        _maybe(rng, args, "padding", padding)
    _maybe(rng, args, "dilation", _pair(rng, 1, 2, two_d))
    _maybe(rng, args, "bias", rng.random() < 0.5)
    return args


def _pool_args(rng: random.Random, op: str, shape: tuple, wild: bool) -> dict:
    two_d = op.endswith("2d")
    if op.startswith("adaptive"):
        return {"size": _pair(rng, 1, 3 if not wild else 12, two_d)}
    kernel = rng.randint(1, 3) if not wild else rng.randint(1, 12)
    args = {"kernel": [kernel, rng.randint(1, 3)] if two_d and rng.random() < 0.2 else kernel}
    _maybe(rng, args, "stride", _pair(rng, 1, 3, two_d))
    _maybe(rng, args, "padding", rng.randint(0, kernel // 2) if not wild else rng.randint(0, 3))
    _maybe(rng, args, "ceil_mode", rng.random() < 0.5)
    if op.startswith("max"):
        _maybe(rng, args, "dilation", rng.randint(1, 2))
    else:
        _maybe(rng, args, "count_include_pad", rng.random() < 0.5)
    return args


def _upsample_args(rng: random.Random, shape: tuple, wild: bool) -> dict:
    spatial = len(shape) - 1
    modes = {1: ["nearest", "linear", "nearest-exact"], 2: ["nearest", "bilinear", "bicubic", "nearest-exact"]}.get(spatial, ["nearest"])
    mode = rng.choice(modes if not wild else ["nearest", "linear", "bilinear", "bicubic"])
    args = {"mode": mode} if mode != "nearest" or rng.random() < 0.3 else {}
    if rng.random() < 0.5 or (wild and rng.random() < 0.3):
        args["scale"] = rng.choice([2, 2.0, 0.5, 1.5, 3]) if spatial != 2 or rng.random() < 0.7 else [2, 1.5]
    if "scale" not in args or (wild and rng.random() < 0.3):
        args["size"] = rng.randint(1, 12) if spatial != 2 or rng.random() < 0.7 else [rng.randint(1, 9), rng.randint(1, 9)]
    if (mode in ("linear", "bilinear", "bicubic") and rng.random() < 0.4) or (wild and rng.random() < 0.2):
        args["align_corners"] = rng.random() < 0.5
    return args


def _factor(rng: random.Random, n: int) -> list[int]:
    a = rng.choice(_divisors(n))
    return [a, n // a]


def _shape_args(rng: random.Random, op: str, shape: tuple, wild: bool) -> dict:
    rank = len(shape)
    numel = 1
    for size in shape:
        numel *= size
    if op == "flatten":
        start = rng.randint(1, max(rank, 1)) if not wild else rng.randint(-rank - 1, rank + 1)
        args = {"start": start} if start != 1 or rng.random() < 0.3 else {}
        if rng.random() < 0.4:
            args["end"] = rng.randint(start if start > 0 else 1, max(rank, 1)) if not wild else rng.randint(-rank - 1, rank + 1)
        return args
    if op == "reshape":
        if wild:
            return {"shape": [rng.choice([-1, 0, 1, 2, 3, 4, 5, 7]) for _ in range(rng.randint(1, 3))]}
        parts = _factor(rng, numel) if rng.random() < 0.6 else [numel]
        if rng.random() < 0.4:
            parts[rng.randrange(len(parts))] = -1
        return {"shape": parts}
    if op == "unflatten":
        dim = _axis(rng, rank, wild)
        size = shape[dim - 1 if dim > 0 else dim] if -rank <= dim < 0 or 1 <= dim <= rank else 4
        sizes = _factor(rng, size) if not wild else [rng.choice([-1, 2, 3]), rng.choice([-1, 2, 5])]
        if rng.random() < 0.3 and not wild:
            sizes[0] = -1
        return {"dim": dim, "sizes": sizes}
    if op == "permute":
        order = list(range(1, rank + 1))
        rng.shuffle(order)
        return {"dims": [0, *order] if not wild else rng.sample(range(rank + 1), rank + 1)}
    if op == "transpose":
        if rank < 2 and not wild:
            return {"dims": [1, -1]}
        return {"dims": rng.sample(range(1, rank + 1), 2) if not wild else [rng.randint(-2, rank + 1), rng.randint(0, rank + 1)]}
    if op == "select":
        dim = _axis(rng, rank, wild)
        size = shape[dim - 1 if dim > 0 else dim] if -rank <= dim < 0 or 1 <= dim <= rank else 1
        return {"dim": dim, "index": rng.randint(-size, size - 1) if not wild else rng.randint(-size - 2, size + 2)}
    if op == "slice":
        args = {"dim": _axis(rng, rank, wild)}
        _maybe(rng, args, "start", rng.randint(-3, 3), 0.6)
        _maybe(rng, args, "end", rng.choice([None, -1, 1, 2, 5, 100]), 0.6)
        _maybe(rng, args, "step", rng.randint(1, 3) if not wild else rng.randint(-1, 3))
        return args
    if op in ("split", "chunk"):
        both = op == "split" and wild and rng.random() < 0.3  # size and sizes, each fitting: torch.split takes one
        dim = _axis(rng, rank, wild and not both)
        size = shape[dim - 1 if dim > 0 else dim] if -rank <= dim < 0 or 1 <= dim <= rank else 2
        args = {"dim": dim} if dim != 1 or rng.random() < 0.3 else {}
        if op == "chunk":
            return args | {"chunks": rng.randint(1, 4) if not wild else rng.randint(1, 9)}
        first = rng.randint(1, max(size - 1, 1))
        sizes = [first, size - first] if size > first and not (wild and not both) else [first, rng.randint(1, 5)]
        if both:
            return args | {"size": rng.randint(1, max(size, 1)), "sizes": sizes if size > first else [size]}
        if rng.random() < 0.5:
            return args | {"size": rng.randint(1, max(size, 1)) if not wild else rng.randint(1, 9)}
        return args | {"sizes": sizes}
    if op in ("mean", "sum"):
        dims = (
            sorted(set(rng.sample(range(1, rank + 1), rng.randint(1, rank)))) if rank and not wild else [rng.randint(-rank - 1, rank + 1)]
        )
        args = {"dims": dims}
        _maybe(rng, args, "keepdim", rng.random() < 0.5)
        return args
    raise AssertionError(op)


def _activation_args(rng: random.Random, op: str, rank: int, wild: bool) -> dict:
    args: dict = {}
    if op == "leaky_relu":
        _maybe(rng, args, "negative_slope", rng.choice([0.1, 0.2, 0]))
    elif op == "elu":
        _maybe(rng, args, "alpha", rng.choice([0.5, 1, 2.0]))
    elif op == "softplus":
        _maybe(rng, args, "beta", rng.choice([0.5, 2]))
        _maybe(rng, args, "threshold", rng.choice([10, 20.0]))
    elif op == "gelu":
        _maybe(rng, args, "approximate", rng.choice(["none", "tanh"]))
    elif op in ("softmax", "log_softmax"):
        _maybe(rng, args, "dim", _axis(rng, max(rank, 1), wild))
    return args


def draw_single(rng: random.Random, x: Value, wild: bool) -> tuple[str, dict]:
    """An op of one input, and its arguments, drawn for `x` (anything at all when `wild`)."""
    shape, rank = x.shape, len(x.shape)
    floating = x.tensor.dtype.is_floating_point
    by_rank = {
        1: ["linear", "batchnorm1d", "layernorm", "groupnorm"],
        2: [
            "conv1d",
            "conv_transpose1d",
            "maxpool1d",
            "avgpool1d",
            "adaptive_avgpool1d",
            "batchnorm1d",
            "groupnorm",
            "upsample",
            "linear",
            "layernorm",
        ],
        3: [
            "conv2d",
            "conv_transpose2d",
            "maxpool2d",
            "avgpool2d",
            "adaptive_avgpool2d",
            "upsample",
            "batchnorm2d",
            "layernorm2d",
            "groupnorm",
        ],
    }
    generic = [*ACTIVATIONS, "softmax", "log_softmax", "dropout", "stochastic_depth", "identity", "flatten", "reshape", "unflatten"]
    generic += ["permute", "transpose", "select", "slice", "pad", "mean", "sum", "add", "mul", "sub", "div"]
    if wild:
        choices = [op for ops in by_rank.values() for op in ops] + generic + ["embedding"]
    elif not floating:  # integers and bools: lookups, the activations and arithmetic that take them, shape ops
        choices = ["embedding"] * 4 + ["relu", "relu6", "sigmoid", "tanh", "sum", "add", "mul", "sub", "div"]
        choices += ["identity", "flatten", "reshape", "permute", "transpose", "select", "slice", "pad"]
    else:
        choices = by_rank.get(rank, []) * 2 + generic
    op = rng.choice(choices)
    if op.startswith(("conv",)):
        return op, _conv_args(rng, op, shape, wild)
    if "pool" in op:
        return op, _pool_args(rng, op, shape, wild)
    if op == "upsample":
        return op, _upsample_args(rng, shape, wild)
    if op == "linear":
        args = {"out": rng.randint(1, 12)}
        _maybe(rng, args, "bias", rng.random() < 0.5)
        return op, args
    if op == "embedding":
        args = {"num": rng.randint(1, 20), "dim": rng.choice([2, 4, 8])}
        _maybe(rng, args, "padding_idx", rng.randint(-args["num"], args["num"] - 1) if not wild else rng.randint(-25, 25), 0.3)
        return op, args
    if op in ("batchnorm1d", "batchnorm2d", "layernorm", "layernorm2d", "groupnorm"):
        args = {}
        _maybe(rng, args, "eps", rng.choice([1e-3, 1e-6]), 0.2)
        _maybe(rng, args, "affine", rng.random() < 0.5, 0.3)
        if op.startswith("batchnorm"):
            _maybe(rng, args, "momentum", rng.choice([0.01, 0.3]), 0.2)
        if op == "layernorm":
            _maybe(rng, args, "dims", rng.randint(1, max(rank, 1)) if not wild else rng.randint(1, 5))
            _maybe(rng, args, "bias", rng.random() < 0.5, 0.2)
        if op == "groupnorm":
            args["groups"] = rng.choice(_divisors(shape[0] if shape else 1)) if not wild else rng.randint(1, 5)
        return op, args
    if op == "dropout":
        return op, {"p": rng.choice([0.0, 0.1, 0.5, 1.0])} if rng.random() < 0.5 else {}
    if op == "stochastic_depth":
        args = {"p": rng.choice([0.0, 0.2, 1.0])}
        _maybe(rng, args, "mode", rng.choice(["row", "batch"]))
        return op, args
    if op in ("add", "mul", "sub", "div"):
        return op, {"value": rng.choice([2, 0.5, -1, 3.0])}
    if op in ACTIVATIONS or op in ("softmax", "log_softmax", "identity"):
        return op, _activation_args(rng, op, rank, wild)
    if op == "pad":
        return op, _pad_args(rng, shape, wild)
    return op, _shape_args(rng, op, shape, wild)


def _pad_args(rng: random.Random, shape: tuple, wild: bool) -> dict:
    dims = rng.randint(1, max(min(len(shape), 3), 1)) if not wild else rng.randint(1, 4)
    low = -2 if wild or rng.random() < 0.2 else 0
    args: dict = {"amounts": [rng.randint(low, 4) for _ in range(2 * dims)]}
    _maybe(rng, args, "mode", rng.choice(["reflect", "replicate", "circular"]), 0.5)
    if args.get("mode", "constant") == "constant":
        _maybe(rng, args, "value", rng.choice([1.0, -0.5, 2.0, 70000.0 if wild else 0.0]), 0.3)
    if wild and rng.random() < 0.3:
        args["amounts"] = args["amounts"][:-1] or None
    return args


# --- writing a case ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _P:
    """A block parameter inside a block's layers: its value comes with each call and copy (`reads`:
    a default that reads the block input's shape, `channels` or `features`)."""

    name: str
    reads: str | None = None


@dataclass
class _Step:
    """One layer as a layer list writes it; replayed once per block call or repeated copy."""

    op: str
    args: dict
    sources: list | None
    local: str
    activation: str | None = None
    skipped: bool = False


@dataclass
class _Frame:
    """A layer list being run: its names' prefix, the values its refs name, and the previous value."""

    prefix: str
    env: dict
    previous: Any
    subject: str | None
    block_args: dict = field(default_factory=dict)
    position: int = 0
    last: str | None = None
    """The ref of the previous value (None where the list cannot name it: a group's input)."""

    def take(self) -> str:
        self.position += 1
        return str(self.position - 1)

    def value(self, key: Any) -> Any:
        if key is None:
            return self.previous
        if key not in self.env:  # a piece this copy's split does not make
            raise Refused(f"no value '{key}' in this copy")
        return self.env[key]

    def singles(self) -> list[str]:
        """Refs of this list naming one value, that a later layer may read."""
        return [key for key, value in self.env.items() if isinstance(value, Value) and not key.startswith("~")]


def _substitute(value: Any, frame: _Frame) -> Any:
    if isinstance(value, _P):
        if value.reads is None:
            return frame.block_args[value.name]
        shape = frame.env["input"].shape
        if not shape:
            raise Refused("channels() of a value with no dims")
        return shape[0] if value.reads == "channels" else shape[-1]
    if isinstance(value, list):
        return [_substitute(item, frame) for item in value]
    if isinstance(value, dict):
        return {key: _substitute(item, frame) for key, item in value.items()}
    return value


def _written_ref(key: str) -> Any:
    return int(key) if key.isdigit() else key


def _dtype(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


class _Builder:
    """Draws one case: inputs, then segments of layers, each run by the oracle as it is written."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.wild = self.rng.choice([0.0, 0.03, 0.08, 0.15])
        self.case = Case(spec={"nncompile": 1, "name": f"generated_{seed}"}, overrides={})
        self.params: dict[str, Any] = {}
        self.blocks: dict[str, dict] = {}
        self.modules: list[nn.Module] = []
        self.count = 0

    def fresh(self, stem: str) -> str:
        self.count += 1
        return f"{stem}{self.count}"

    # -- running ------------------------------------------------------------------------------------

    def run(self, frame: _Frame, step: _Step) -> None:
        """Run `step` in `frame` through the oracle and name its values; raises Refused."""
        if step.skipped:
            frame.env[step.local] = frame.value(step.sources[0] if step.sources else None)
            frame.previous = frame.env[step.local]
            return
        name = frame.prefix + step.local
        args = _substitute(step.args, frame)
        before = len(self.modules)
        with FlopCounterMode(display=False) as counter:
            results = self._results(frame, step, args)
        params = sum(p.numel() for module in self.modules[before:] for p in module.parameters())
        batched = any(b for _, b in results)
        macs = counter.get_total_flops() // 2 // (BATCH if batched else 1)
        values = [Value(t, name, None, b, bounded=step.op == "positions") for t, b in results]
        self._record(name, step.op, values, params, macs)
        if step.activation:
            (activated, still_batched), *_ = oracle(step.activation, {}, values, self.modules)
            values = [Value(activated, f"{name}_{step.activation}", None, still_batched)]
            self._record(values[0].name, step.activation, values, 0, 0)
        several = step.op in ("split", "chunk")  # a tuple, even of one piece
        frame.env[step.local] = values if several else values[0]
        if several:
            frame.env[f"{step.local}.*"] = values
            for index, value in enumerate(values):
                frame.env[f"{step.local}.{index}"] = value
        frame.previous = frame.env[step.local]

    def _results(self, frame: _Frame, step: _Step, args: dict) -> list[tuple[torch.Tensor, bool]]:
        if step.op == "parameter":
            tensor = nn.Parameter(torch.zeros(args["shape"]))
            self.modules.append(nn.ParameterList([tensor]))
            return [(tensor, False)]
        sources = [frame.value(key) for key in step.sources] if step.sources else [frame.previous]
        sources = [v for value in sources for v in (value if isinstance(value, list) else [value])]
        if step.op == "positions":
            x, dim = sources[0], args.get("dim", 1)
            rank = x.tensor.dim()
            if not x.batched or not -rank <= dim < rank or dim % rank == 0:
                raise Refused("positions: needs a batch and a dim other than it")
            return [(torch.arange(x.tensor.shape[dim]), False)]
        return oracle(step.op, args, sources, self.modules)

    def _record(self, name: str, op: str, values: list[Value], params: int, macs: int) -> None:
        outputs = [(v.shape, _dtype(v.tensor), v.batched) for v in values]
        self.case.nodes[name] = {"op": op, "outputs": outputs, "params": params, "macs": macs}
        self.case.ops.add(op)

    # -- writing ------------------------------------------------------------------------------------

    def write(
        self,
        frame: _Frame,
        written: list,
        steps: list,
        op: str,
        args: dict,
        sources: list | None = None,
        *,
        named: bool | None = None,
        skip: str | None = None,
        activation: str | None = None,
        extra: dict | None = None,
    ) -> _Step:
        """Write a layer into `written`, keep it in `steps` (for replays), and run it."""
        named = self.rng.random() < 0.75 if named is None else named
        layer_id = self.fresh("l") if named else None
        position = frame.take() if skip != "param" else None
        local = layer_id or position or self.fresh("~")
        entry: dict[str, Any] = {"id": layer_id} if layer_id else {}
        entry["op"] = op
        entry.update({key: self.sugar(value) for key, value in args.items()})
        entry.update(extra or {})
        if sources is not None:
            refs = [_written_ref(key) for key in sources]
            entry["from"] = refs[0] if len(refs) == 1 and self.rng.random() < 0.5 else refs
        if activation:
            entry["activation"] = activation
        if skip:
            entry["when"] = self.condition(frame, False, reads_shapes=skip == "shape")
        elif self.rng.random() < 0.08:
            entry["when"] = self.condition(frame, True, reads_shapes=self.rng.random() < 0.5)
        written.append(entry)
        step = _Step(op, args, sources, local, activation, skipped=skip is not None)
        steps.append(step)
        if layer_id or position is not None:  # an unnamed layer skipped by a parameter cannot be referred to
            frame.last = local
        self.run(frame, step)
        return step

    def condition(self, frame: _Frame, holds: bool, reads_shapes: bool) -> str:
        if reads_shapes and frame.subject is not None:
            return f"len(shape({frame.subject})) {'>=' if holds else '>'} {0 if holds else 50}"
        name = self.fresh("p")
        self.params[name] = self.rng.randint(0, 5)
        return f"${name} {'<' if holds else '>'} 100"

    def sugar(self, value: Any) -> Any:
        """`value` as a spec may write it: literally, or through parameters and expressions."""
        if isinstance(value, _P):
            return f"${value.name}"
        if isinstance(value, list):
            return [self.sugar(item) for item in value]
        if isinstance(value, bool):
            return ("$true" if value else "$false") if self.rng.random() < 0.05 else value
        if not isinstance(value, int) or self.rng.random() > 0.2:
            return value
        name, form = self.fresh("p"), self.rng.randrange(6)
        self.params[name] = value
        if form == 1:
            self.params[name] = value + 3
            self.case.overrides[name] = value
        elif form == 2:
            return f"$(${name} * 3) // 3"
        elif form == 3:
            return f"$max(${name}, {value - 1})"
        elif form == 4:
            base = self.fresh("p")
            self.params[base] = value - 1
            self.params[name] = f"${base} + 1"
        elif form == 5:
            return f"$min({value}, {value + 7})"
        return f"${name}"

    # -- inputs ---------------------------------------------------------------------------------------

    def inputs(self) -> _Frame:
        rng = self.rng
        kind = rng.choice(["image", "image", "sequence", "sequence", "tokens", "vector"])
        shape = {
            "image": [rng.choice([1, 2, 3, 4, 6, 8]), rng.randint(3, 12), rng.randint(3, 12)],
            "sequence": [rng.randint(2, 8), rng.choice([2, 4, 6, 8])],
            "tokens": [rng.randint(2, 8)],
            "vector": [rng.randint(1, 12)],
        }[kind]
        draw = rng.random()
        if kind == "tokens":
            dtype = "int64" if draw < 0.7 else "int32" if draw < 0.88 else "bool"
        else:
            dtype = "float32" if draw < 0.7 else rng.choice(FLOATS[1:]) if draw < 0.82 else rng.choice(DTYPES[4:]) if draw < 0.9 else "bool"
        declared = {"x": (shape, dtype)}
        if rng.random() < 0.2:
            other = list(shape) if rng.random() < 0.7 else [rng.randint(1, 8) for _ in shape]
            declared["extra"] = (other, dtype if rng.random() < 0.6 else rng.choice(DTYPES))
        spec_inputs, env = {}, {}
        for name, (dims, kind_of) in declared.items():
            written = [self.sugar(size) if self.rng.random() < 0.5 else size for size in dims]
            spec_inputs[name] = written if kind_of == "float32" and rng.random() < 0.8 else {"shape": written, "dtype": kind_of}
            dt = getattr(torch, kind_of)
            tensor = torch.randn(BATCH, *dims).to(dt) if dt.is_floating_point else torch.zeros(BATCH, *dims, dtype=dt)
            env[name] = Value(tensor, name, name)
            self.case.nodes[name] = {"op": "input", "outputs": [(tuple(dims), kind_of, True)], "params": 0, "macs": 0}
        self.case.spec["inputs"] = spec_inputs
        return _Frame("", env, env["x"], subject="x", last="x")

    # -- segments -------------------------------------------------------------------------------------

    def segment(self, frame: _Frame, written: list, steps: list, top: bool) -> None:
        """Write one or a few layers onto `frame`'s list."""
        rng = self.rng
        x = frame.previous
        if isinstance(x, list):  # an op with several outputs: pick one
            self.layer(frame, written, steps, source=f"{frame.last}.{rng.randrange(len(x))}")
            return
        floating = x.tensor.dtype.is_floating_point
        named = frame.last is not None  # a group's first layer cannot name the group's input
        kinds = {"layer": 10, "decoy": 1.5, "pieces": 1.2}
        if named:
            kinds |= {"merge": 3, "parameter": 1, "positions": 0.6 if x.batched else 0}
            kinds |= {"attention": (2 if floating else 0.6) if len(x.shape) in (2, 3) else 0.1}
        if top:
            kinds |= {"group": 1, "block": 2, "repeat": 1.5}
        kind = rng.choices(list(kinds), list(kinds.values()))[0]
        getattr(self, kind)(frame, written, steps)

    def layer(self, frame: _Frame, written: list, steps: list, source: str | None = None) -> None:
        x = frame.value(source)
        wild = self.rng.random() < self.wild
        op, args = draw_single(self.rng, x, wild)
        activation = None
        if op not in ACTIVATIONS and x.tensor.dtype.is_floating_point and self.rng.random() < 0.15:
            activation = self.rng.choice(_SHORTHANDS)
        extra = None
        if "out" in args and frame.subject is not None and self.rng.random() < 0.15:  # an argument that reads a shape
            subject = frame.value(frame.subject)
            if subject.shape:  # in a block, a placeholder: each copy reads its own input
                args["out"] = _P("", "channels") if frame.subject == "input" else subject.shape[0]
                extra = {"out": f"$channels({frame.subject})"}
        self.write(frame, written, steps, op, args, [source] if source else None, activation=activation, extra=extra)

    def merge(self, frame: _Frame, written: list, steps: list) -> None:
        rng, x = self.rng, frame.previous
        keys = frame.singles()
        wild = rng.random() < self.wild
        op = rng.choice(["add", "add", "mul", "sub", "div", "concat", "concat", "matmul", "pad"])
        if op == "pad":
            fits = [k for k in keys if len(frame.env[k].shape) == len(x.shape) and frame.env[k].shape[1:] >= x.shape[1:]]
        elif op == "matmul":
            fits = [k for k in keys if len(frame.env[k].shape) >= 2 and len(x.shape) >= 2 and frame.env[k].shape[-2] == x.shape[-1]]
        elif op == "concat":
            fits = [k for k in keys if len(frame.env[k].shape) == len(x.shape)]
        else:
            fits = [k for k in keys if frame.env[k].shape == x.shape or frame.env[k].shape == x.shape[1:]]
        other = rng.choice(fits if fits and not wild else keys)
        sources = [frame.last, other]
        if op in ("add", "mul") and rng.random() < 0.2:
            sources.append(rng.choice(fits or keys))
        if rng.random() < (0.3 if op != "pad" else 0.05):
            sources.reverse()
        args: dict = {}
        if op == "concat":
            y = frame.env[other]
            differ = [i + 1 for i, (a, b) in enumerate(zip(x.shape, y.shape)) if a != b]
            dim = differ[0] if len(differ) == 1 else _axis(rng, max(len(x.shape), 1), wild)
            if dim != 1 or rng.random() < 0.3:
                args["dim"] = dim
        self.write(frame, written, steps, op, args, sources, activation="relu" if rng.random() < 0.1 else None)

    def decoy(self, frame: _Frame, written: list, steps: list) -> None:
        """A layer whose condition is false: its value is its first input, whatever its arguments."""
        skip = self.rng.choice(["param", "shape"]) if frame.subject is not None else "param"
        if frame.last is not None and self.rng.random() < 0.3:
            other = self.rng.choice(frame.singles())
            self.write(frame, written, steps, self.rng.choice(["add", "concat"]), {}, [frame.last, other], skip=skip)
            return
        op, args = draw_single(self.rng, frame.previous, wild=False)  # never run, but valid for the schema
        self.write(frame, written, steps, op, args, skip=skip)

    def pieces(self, frame: _Frame, written: list, steps: list) -> None:
        """split or chunk, then a layer reading one piece, or a concat of every piece."""
        x = frame.previous
        op = self.rng.choice(["split", "chunk"])
        args = _shape_args(self.rng, op, x.shape, self.rng.random() < self.wild) if x.shape else {"chunks": 2}
        try:
            step = self.write(frame, written, steps, op, args, named=True)
        except Refused:  # a piece read, so that check's verdict is on the split, not on an output left unpicked
            written.append({"op": "identity", "from": f"{written[-1]['id']}.0"})
            raise
        pieces = frame.env[step.local]
        if self.rng.random() < 0.4:
            self.write(frame, written, steps, "concat", {"dim": args.get("dim", 1)}, [f"{step.local}.*"])
        else:
            self.layer(frame, written, steps, source=f"{step.local}.{self.rng.randrange(len(pieces))}")

    def parameter(self, frame: _Frame, written: list, steps: list) -> None:
        """A learnable tensor, joined to the previous value by a merge."""
        rng, x = self.rng, frame.previous
        shape = list(x.shape) or [1]
        op = rng.choice(["add", "mul", "concat", "matmul"]) if len(shape) >= 1 else "add"
        if rng.random() < self.wild:
            tensor_shape = [rng.randint(1, 4) for _ in range(rng.randint(1, 4))]
        elif op == "concat":
            tensor_shape = [1, *shape[:-1], rng.randint(1, 3)] if len(shape) >= 1 else [1]
            tensor_shape[1] = 1 if len(shape) >= 2 else tensor_shape[1]
        elif op == "matmul":
            tensor_shape = [shape[-1], rng.randint(1, 5)]
        else:
            tensor_shape = rng.choice([[1, *shape], shape[-1:], shape])
        if op == "concat" and len(shape) >= 2:
            tensor_shape = [1, 1, *shape[1:]]
        init = rng.choice(["zeros", "ones", {"type": "normal", "std": 0.02}, {"type": "constant", "value": 0.5}])
        extra = {"shape": [self.sugar(size) for size in tensor_shape], "init": init}
        before = frame.last
        step = self.write(frame, written, steps, "parameter", {"shape": tensor_shape}, named=True, extra=extra)
        sources = [before, step.local] if rng.random() < 0.7 or op == "matmul" else [step.local, before]
        self.write(frame, written, steps, op, {"dim": 1} if op == "concat" else {}, sources)

    def positions(self, frame: _Frame, written: list, steps: list) -> None:
        """Positions of the previous value, embedded, and (for a sequence) added to it."""
        rng, x, before = self.rng, frame.previous, frame.last
        dim = 1 if rng.random() > self.wild else rng.randint(-3, 3)
        length = x.shape[0] if x.shape else 1
        pos = self.write(frame, written, steps, "positions", {"dim": dim} if dim != 1 else {}, [before], named=True)
        width = x.shape[-1] if len(x.shape) == 2 and x.tensor.dtype.is_floating_point else 4
        num = length + rng.randint(0, 2) if rng.random() > self.wild else rng.randint(1, 4)
        embedded = self.write(frame, written, steps, "embedding", {"num": num, "dim": width}, [pos.local], named=True)
        if len(x.shape) == 2 and x.tensor.dtype.is_floating_point:
            self.write(frame, written, steps, "add", {}, [before, embedded.local])

    def attention(self, frame: _Frame, written: list, steps: list) -> None:
        rng, x, last = self.rng, frame.previous, frame.last
        width = x.shape[-1] if x.shape else 1
        others = [k for k in frame.singles() if len(frame.env[k].shape) == 2] or [last]
        kind = rng.choice(["mha", "mha", "sdpa", "sdpa", "scores", *(["window"] * 4 if len(x.shape) == 3 else [])])
        if not x.tensor.dtype.is_floating_point and rng.random() < 0.7:  # integer scores are torch's; bool ones are not
            kind = "scores"
        if kind == "window":
            wild = rng.random() < self.wild
            args = {"heads": rng.choice(_divisors(width)) if not wild else rng.randint(1, 5), "window": _pair(rng, 1, 5, True)}
            low_window = min(_two(args["window"]))
            _maybe(rng, args, "shift", _pair(rng, 0, low_window - 1 if not wild else 5, True), 0.6)
            _maybe(rng, args, "qkv_bias", rng.random() < 0.5, 0.2)
            _maybe(rng, args, "proj_bias", rng.random() < 0.5, 0.2)
            self.write(frame, written, steps, "shifted_window_attention", args, None)
        elif kind == "mha":
            heads = rng.choice(_divisors(width)) if rng.random() > self.wild else rng.randint(1, 5)
            args = {"heads": heads}
            _maybe(rng, args, "dropout", rng.choice([0.0, 0.1]), 0.2)
            _maybe(rng, args, "bias", rng.random() < 0.5, 0.3)
            sources = None if rng.random() < 0.5 or last is None else [last, rng.choice(others), rng.choice(others)]
            if sources and rng.random() < 0.5:
                sources[2] = sources[1]
            if sources and rng.random() < 0.3:  # an additive key padding mask made from the keys
                mask = self.write(frame, written, steps, "sum", {"dims": [-1]}, [sources[1]], named=True)
                sources.append(mask.local)
            self.write(frame, written, steps, "multihead_attention", args, sources)
        elif kind == "sdpa":
            args: dict = {}
            _maybe(rng, args, "causal", rng.random() < 0.5)
            _maybe(rng, args, "scale", rng.choice([None, 0.5]), 0.2)
            sources = [last, last, last] if rng.random() < 0.6 else [last, rng.choice(others), rng.choice(others)]
            if rng.random() < 0.3 and not args.get("causal"):
                length = x.shape[0] if x.shape else 1
                mask = self.write(
                    frame, written, steps, "parameter", {"shape": [length, length]}, named=True, extra={"shape": [length, length]}
                )
                sources.append(mask.local)
            self.write(frame, written, steps, "scaled_dot_product_attention", args, sources)
        else:
            turned = self.write(frame, written, steps, "transpose", {"dims": [1, 2]}, [last], named=True)
            self.write(frame, written, steps, "matmul", {}, [last, turned.local])

    def group(self, frame: _Frame, written: list, steps: list) -> None:
        """An inline group of layers (a nested nn.Sequential) reading the previous value."""
        group_id = self.fresh("g")
        layers: list = []
        entry: dict[str, Any] = {"id": group_id, "layers": layers}
        written.append(entry)
        frame.take()
        inner = _Frame(f"{group_id}.", {}, frame.previous, subject=None, last=None)
        try:
            for _ in range(self.rng.randint(1, 3)):
                self.segment(inner, layers, [], top=False)
            if isinstance(inner.previous, list):
                self.layer(inner, layers, [], source=f"{inner.last}.0")
        finally:
            if not layers:
                layers.append({"op": "identity"})
        frame.env[group_id] = inner.previous
        frame.previous, frame.last = inner.previous, group_id
        for key, value in inner.env.items():
            if isinstance(value, Value) and not key.isdigit() and not key.startswith("~") and "." not in key:
                frame.env[f"{group_id}.{key}"] = value

    def block(self, frame: _Frame, written: list, steps: list, repeat: int = 1) -> None:
        """A block: defined once, called (and maybe repeated) with arguments; its layers may read
        `input` (a residual), and its parameters may default to the input's shape."""
        rng = self.rng
        name, call_id = self.fresh("blk"), self.fresh("b")
        params: dict[str, Any] = {}
        layers: list = []
        self.blocks[name] = {"params": params, "layers": layers} if rng.random() < 0.8 else {"layers": layers}
        self.blocks[name].setdefault("params", params)
        call: dict[str, Any] = {"id": call_id, "op": name}
        template = rng.random() < 0.3 and repeat > 1
        if repeat > 1 or rng.random() < 0.1:
            call["repeat"] = {"count": repeat, "names": "m{$i + 1}"} if template else repeat
        written.append(call)
        frame.take()
        block_steps: list[_Step] = []
        copy_args: list[dict] = [{} for _ in range(repeat)]
        source = frame.previous
        try:
            for copy in range(repeat):
                prefix = f"{call_id}.m{copy + 1}." if template else f"{call_id}.{copy}." if "repeat" in call else f"{call_id}."
                inner = _Frame(prefix, {"input": source}, source, subject="input", block_args=copy_args[copy], last="input")
                if copy == 0:
                    self._block_body(inner, layers, block_steps, params, call, copy_args)
                else:
                    for step in block_steps:
                        self.run(inner, step)
                source = inner.previous
        finally:
            if not layers:
                layers.append({"op": "identity"})
        frame.env[call_id] = source
        frame.previous, frame.last = source, call_id

    def _block_body(self, inner: _Frame, layers: list, block_steps: list, params: dict, call: dict, copy_args: list) -> None:
        """Draw a block's layers for its first copy; some integer arguments become block parameters,
        passed by the call (one value for every copy, one per copy, or `$i`-dependent) or defaulted."""
        rng = self.rng
        for _ in range(rng.randint(1, 3)):
            if isinstance(inner.previous, list):
                self.layer(inner, layers, block_steps, source=f"{inner.last}.0")
                continue
            kind = rng.choices(["layer", "merge", "decoy", "pieces", "param"], [6, 2, 1, 1, 3])[0]
            if kind != "param":
                getattr(self, kind)(inner, layers, block_steps)
                continue
            x = inner.previous
            op, args = draw_single(rng, x, rng.random() < self.wild)
            keys = [k for k, v in args.items() if isinstance(v, int) and not isinstance(v, bool) and v > 0]
            if not keys:
                self.write(inner, layers, block_steps, op, args)
                continue
            key = rng.choice(keys)
            param = self.fresh("a")
            value = args[key]
            repeated = "repeat" in call
            form = rng.choice(
                ["required", "default", "reads", *(["per_copy", "index"] * repeated)] if key == "out" else ["required", "default"]
            )
            if form == "reads" and x is inner.env["input"] and x.shape:
                params[param] = "$channels(input)"
                args[key] = _P(param, "channels")
            else:
                form = "required" if form == "reads" else form
                params[param] = "int" if form != "default" else value
                args[key] = _P(param)
                for copy, values in enumerate(copy_args):
                    values[param] = value + (copy if form == "index" else 0)
                if form == "per_copy":
                    call[param] = [value] * len(copy_args)
                elif form == "index":
                    call[param] = f"${value} + $i"
                elif form == "required":
                    call[param] = value
            self.write(inner, layers, block_steps, op, args)

    def repeat(self, frame: _Frame, written: list, steps: list) -> None:
        """A repeated block, or a repeated single layer (its `out` per copy from a list or `$i`)."""
        rng = self.rng
        count = rng.randint(1, 3)
        if rng.random() < 0.5:
            self.block(frame, written, steps, repeat=max(count, 2))
            return
        x = frame.previous
        op, args = draw_single(rng, x, rng.random() < self.wild)
        layer_id = self.fresh("r")
        entry: dict[str, Any] = {"id": layer_id, "op": op, **{key: self.sugar(value) for key, value in args.items()}}
        template = rng.random() < 0.3
        entry["repeat"] = {"count": count, "names": "m{$i + 1}"} if template else count
        outs = [args.get("out")] * count
        if "out" in args and rng.random() < 0.5:
            outs = [args["out"] + copy for copy in range(count)]
            entry["out"] = outs if rng.random() < 0.5 else f"${args['out']} + $i"
        written.append(entry)
        frame.take()
        inner = _Frame(f"{layer_id}.", {}, x, subject=None)
        copies = []
        for copy in range(count):
            local = f"m{copy + 1}" if template else str(copy)
            copy_args = dict(args, out=outs[copy]) if "out" in args else args
            self.run(inner, _Step(op, copy_args, None, local))
            copies.append(inner.previous)
        frame.env[layer_id] = inner.previous
        frame.env[f"{layer_id}.*"] = copies
        frame.previous, frame.last = inner.previous, layer_id


def generate(seed: int) -> Case:
    """The case of `seed`: a spec, its `--set` overrides and torch's verdict."""
    builder = _Builder(seed)
    frame = builder.inputs()
    layers: list = []
    try:
        for _ in range(builder.rng.randint(1, 6)):
            builder.segment(frame, layers, [], top=True)
        if isinstance(frame.previous, list):
            builder.case.spec["outputs"] = [f"{frame.last}.0"]
        elif builder.rng.random() < 0.15 and frame.last is not None:
            builder.case.spec["outputs"] = [_written_ref(frame.last), *([_written_ref(builder.rng.choice(frame.singles()))])]
    except Refused as refusal:
        builder.case.accepted = False
        builder.case.refusal = str(refusal)
    finally:
        if not layers:
            layers.append({"op": "identity"})
    spec = builder.case.spec
    if builder.params:
        spec["params"] = builder.params
    if builder.blocks:
        spec["blocks"] = builder.blocks
    spec["layers"] = layers
    return builder.case


def compare(case: Case, analysis: Any) -> list[str]:
    """How `check`'s analysis of the case differs from torch's verdict (empty: they agree)."""
    if not analysis.ok:
        if case.accepted:
            return [f"check refused what torch runs: {[str(d) for d in analysis.diagnostics if d.is_error]}"]
        return []
    if not case.accepted:
        return [f"check accepted what torch refuses: {case.refusal}"]
    problems = []
    typed = analysis.graph.nodes
    for name, expected in case.nodes.items():
        node = typed.get(name)
        if node is None:
            problems.append(f"{name}: not in the checked graph")
            continue
        found = [(tuple(t.shape), t.dtype, t.batched) for t in node.outputs]
        if found != expected["outputs"]:
            problems.append(f"{name} ({expected['op']}): check says {found}, torch {expected['outputs']}")
        if node.params != expected["params"] or node.macs != expected["macs"]:
            problems.append(
                f"{name} ({expected['op']}): params/MACs check {node.params}/{node.macs}, torch {expected['params']}/{expected['macs']}"
            )
    extra = {n for n, node in typed.items() if node.kind.value in ("call", "tensor", "input")} - set(case.nodes)
    if extra:
        problems.append(f"check has layers torch never ran: {sorted(extra)}")
    return problems
