"""The few modules and functions emitted models use that torch does not have under the same terms.

Each matches the reference implementation it is named after exactly (same parameters, same numbers, the
same random-number use in training), and scripts with TorchScript. Imported only by `emit`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .initializers import parse
from .ops import resolve_target


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


class ShiftedWindowAttention(nn.Module):
    """Swin's window attention with a learned relative position bias, exactly torchvision's
    `ShiftedWindowAttention` (same tensors, registered in the same order): an [H, W, C] map per sample
    is padded to whole windows, rolled back by `shift_size` (where the padded map is larger than a
    window), attended within each window (tokens that came from different regions masked), and rolled,
    cropped and returned at [H, W, C]."""

    def __init__(
        self,
        dim: int,
        window_size: list[int],
        shift_size: list[int],
        num_heads: int,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        attention_dropout: float = 0.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.window_size = window_size
        self.shift_size = shift_size
        self.num_heads = num_heads
        self.attention_dropout = attention_dropout
        self.dropout = dropout
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)
        table = torch.zeros((2 * window_size[0] - 1) * (2 * window_size[1] - 1), num_heads)
        self.relative_position_bias_table = nn.Parameter(nn.init.trunc_normal_(table, std=0.02))
        coords = torch.stack(torch.meshgrid(torch.arange(window_size[0]), torch.arange(window_size[1]), indexing="ij"))
        coords = coords.flatten(1)
        relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
        relative[:, :, 0] += window_size[0] - 1
        relative[:, :, 1] += window_size[1] - 1
        relative[:, :, 0] *= 2 * window_size[1] - 1
        self.register_buffer("relative_position_index", relative.sum(-1).flatten())

    def forward(self, x: Tensor) -> Tensor:
        window = self.window_size
        tokens = window[0] * window[1]
        bias = self.relative_position_bias_table[self.relative_position_index].view(tokens, tokens, -1)
        bias = bias.permute(2, 0, 1).contiguous().unsqueeze(0)
        batch, height, width, channels = x.shape
        x = F.pad(x, (0, 0, 0, (window[1] - width % window[1]) % window[1], 0, (window[0] - height % window[0]) % window[0]))
        padded_height, padded_width = x.shape[1], x.shape[2]
        shift = self.shift_size.copy()
        if window[0] >= padded_height:
            shift[0] = 0
        if window[1] >= padded_width:
            shift[1] = 0
        if sum(shift) > 0:
            x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
        rows, cols = padded_height // window[0], padded_width // window[1]
        windows = rows * cols
        x = x.view(batch, rows, window[0], cols, window[1], channels)
        x = x.permute(0, 1, 3, 2, 4, 5).reshape(batch * windows, tokens, channels)
        qkv = F.linear(x, self.qkv.weight, self.qkv.bias)
        qkv = qkv.reshape(x.size(0), tokens, 3, self.num_heads, channels // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        q = q * (channels // self.num_heads) ** -0.5
        attention = q.matmul(k.transpose(-2, -1)) + bias
        if sum(shift) > 0:
            regions = x.new_zeros((padded_height, padded_width))
            count = 0
            for h in ((0, -window[0]), (-window[0], -shift[0]), (-shift[0], padded_height)):
                for w in ((0, -window[1]), (-window[1], -shift[1]), (-shift[1], padded_width)):
                    regions[h[0] : h[1], w[0] : w[1]] = count
                    count += 1
            regions = regions.view(rows, window[0], cols, window[1]).permute(0, 2, 1, 3).reshape(windows, tokens)
            mask = regions.unsqueeze(1) - regions.unsqueeze(2)
            mask = mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)
            attention = attention.view(x.size(0) // windows, windows, self.num_heads, tokens, tokens)
            attention = (attention + mask.unsqueeze(1).unsqueeze(0)).view(-1, self.num_heads, tokens, tokens)
        attention = F.dropout(F.softmax(attention, dim=-1), p=self.attention_dropout, training=self.training)
        x = attention.matmul(v).transpose(1, 2).reshape(x.size(0), tokens, channels)
        x = F.dropout(F.linear(x, self.proj.weight, self.proj.bias), p=self.dropout, training=self.training)
        x = x.view(batch, rows, cols, window[0], window[1], channels)
        x = x.permute(0, 1, 3, 2, 4, 5).reshape(batch, padded_height, padded_width, channels)
        if sum(shift) > 0:
            x = torch.roll(x, shifts=(shift[0], shift[1]), dims=(1, 2))
        return x[:, :height, :width, :].contiguous()

    def extra_repr(self) -> str:
        return f"window_size={self.window_size}, shift_size={self.shift_size}, num_heads={self.num_heads}"


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


def pad_to(x: Tensor, like: Tensor, value: float = 0.0) -> Tensor:
    """x padded with `value` to like's sizes in every dim after the channels, half of each difference
    before (rounded down) and the rest after, as U-Net's up blocks pad to their skip connection."""
    amounts: list[int] = []
    for dim in range(x.dim() - 1, 1, -1):
        difference = like.size(dim) - x.size(dim)
        amounts.extend([difference // 2, difference - difference // 2])
    return F.pad(x, amounts, value=value)


def positions(x: Tensor, dim: int) -> Tensor:
    """`torch.arange(x.size(dim))` on x's device: the positions 0..T-1 of a sequence (no batch dimension)."""
    return torch.arange(x.size(dim), dtype=torch.long, device=x.device)


def arange_(tensor: Tensor) -> Tensor:
    """Fills `tensor` with 0, 1, 2, … in row-major order, in place (an initialiser, as nn.init's are)."""
    return tensor.copy_(torch.arange(tensor.numel(), dtype=tensor.dtype).reshape(tensor.shape))


def initialize(tensor: Tensor, init: str | Mapping[str, Any]) -> None:
    """Fill a learnable tensor as the spec's `init` says (see compiler.initializers), in place, without
    recording gradients."""
    initializer, options = parse(init)
    with torch.no_grad():
        resolve_target(initializer.target)(tensor, **initializer.call(options))
