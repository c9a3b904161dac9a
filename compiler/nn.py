"""The few modules and functions emitted models use that torch does not have under the same terms.

Each matches the reference implementation it is named after exactly (same parameters, same numbers, the
same random-number use in training), and scripts with TorchScript. Imported only by `emit`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW tensor (torchvision.models.convnext.LayerNorm2d)."""

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class StochasticDepth(nn.Module):
    """Drops whole residual branches while training (torchvision.ops.StochasticDepth): `row` mode drops
    each sample's branch with probability p, `batch` mode the whole batch's; identity in eval."""

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"


class Attention(nn.Module):
    """`F.scaled_dot_product_attention` with its dropout active only while training, as nanoGPT's
    CausalSelfAttention calls it. Inputs are (…, L, E) queries, (…, S, E) keys and (…, S, Ev) values,
    and an optional boolean or additive float mask."""

    def __init__(self, dropout: float = 0.0, causal: bool = False, scale: float | None = None) -> None:
        super().__init__()
        self.dropout = dropout
        self.causal = causal
        self.scale = scale

    def forward(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
        p = self.dropout if self.training else 0.0
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=self.causal, scale=self.scale)

    def extra_repr(self) -> str:
        return f"dropout={self.dropout}, causal={self.causal}, scale={self.scale}"


def reshape(x: Tensor, shape: list[int]) -> Tensor:
    """Reshape each sample: the batch dimension is kept, so `shape` may hold one -1 of its own."""
    sizes = [x.size(0)]
    sizes.extend(shape)  # TorchScript cannot size a starred list
    return x.reshape(sizes)


def cat(tensors: list[Tensor], dim: int, batched: list[bool]) -> Tensor:
    """`torch.cat` where values without a batch dimension (learnable tensors of batch size 1, such as
    ViT's class token) are expanded over the batch of the batched ones first."""
    batch = 1
    for tensor, has_batch in zip(tensors, batched):
        if has_batch:
            batch = tensor.size(0)
    expanded: list[Tensor] = []
    for tensor, has_batch in zip(tensors, batched):
        sizes = list(tensor.shape)
        sizes[0] = batch
        expanded.append(tensor if has_batch else tensor.expand(sizes))
    return torch.cat(expanded, dim)


def positions(x: Tensor, dim: int) -> Tensor:
    """`torch.arange(x.size(dim))` on x's device: the positions 0..T-1 of a sequence (no batch dimension)."""
    return torch.arange(x.size(dim), dtype=torch.long, device=x.device)


def initialize(tensor: Tensor, init: str | Mapping[str, Any]) -> None:
    """Fill a learnable tensor as the spec's `init` says, in place, without recording gradients."""
    kind, options = (init, {}) if isinstance(init, str) else (init["type"], {k: v for k, v in init.items() if k != "type"})
    with torch.no_grad():
        if kind == "zeros":
            tensor.zero_()
        elif kind == "ones":
            tensor.fill_(1.0)
        elif kind == "constant":
            tensor.fill_(options["value"])
        elif kind == "normal":
            tensor.normal_(options.get("mean", 0.0), options.get("std", 1.0))
        elif kind == "trunc_normal":
            std = options.get("std", 1.0)
            nn.init.trunc_normal_(tensor, options.get("mean", 0.0), std, options.get("a", -2.0 * std), options.get("b", 2.0 * std))
        elif kind == "uniform":
            tensor.uniform_(options.get("low", 0.0), options.get("high", 1.0))
        elif kind == "arange":
            tensor.copy_(torch.arange(tensor.numel(), dtype=tensor.dtype).reshape(tensor.shape))
        elif kind == "kaiming_uniform":
            nn.init.kaiming_uniform_(tensor, a=math.sqrt(5))
        else:
            raise ValueError(f"unknown initialiser {kind!r}")
