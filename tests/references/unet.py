"""Reference U-Net (Ronneberger, Fischer and Brox, 2015) with transposed-convolution upsampling.

Module names follow the widely used layout of milesial/Pytorch-UNet (`inc`, `down1`..`down4`, `up1`..`up4`, `outc`),
so its `state_dict` keys match (e.g. `inc.double_conv.0.weight`, `up1.up.weight`, `outc.conv.weight`). Convolutions
are padded, so the output has the input's H and W. Each `Up` zero-pads its upsampled input to the skip connection's
size when they differ; inputs whose H and W are multiples of 16 (the four 2x2 poolings) need no padding.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn import functional as F


class DoubleConv(nn.Module):
    """(3x3 convolution, padding 1, no bias → BatchNorm2d → ReLU) twice."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.double_conv(x)


class Down(nn.Module):
    """2x2 max pooling, then DoubleConv: (N, in, H, W) → (N, out, H/2, W/2)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool_conv(x)


class Up(nn.Module):
    """2x2 stride-2 transposed convolution halving the channels, concatenation after the skip, then DoubleConv."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """x1: (N, in, h, w) from below; x2: (N, in/2, H, W) skip → (N, out, H, W)."""
        x1 = self.up(x1)  # (N, in/2, 2h, 2w)
        dy = x2.size(2) - x1.size(2)
        dx = x2.size(3) - x1.size(3)
        if dy or dx:
            x1 = F.pad(x1, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([x2, x1], dim=1))  # concatenated: (N, in, H, W)


class OutConv(nn.Module):
    """1x1 convolution (with bias) to the class logits."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class UNet(nn.Module):
    """U-Net: (N, n_channels, H, W) → per-pixel logits (N, n_classes, H, W); widths base, 2, 4, 8, 16 x base."""

    def __init__(self, n_channels: int = 3, n_classes: int = 2, base: int = 64) -> None:
        super().__init__()
        self.n_channels = n_channels
        self.n_classes = n_classes
        self.inc = DoubleConv(n_channels, base)
        self.down1 = Down(base, base * 2)
        self.down2 = Down(base * 2, base * 4)
        self.down3 = Down(base * 4, base * 8)
        self.down4 = Down(base * 8, base * 16)
        self.up1 = Up(base * 16, base * 8)
        self.up2 = Up(base * 8, base * 4)
        self.up3 = Up(base * 4, base * 2)
        self.up4 = Up(base * 2, base)
        self.outc = OutConv(base, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.inc(x)  # (N, base, H, W)
        x2 = self.down1(x1)  # (N, 2base, H/2, W/2)
        x3 = self.down2(x2)  # (N, 4base, H/4, W/4)
        x4 = self.down3(x3)  # (N, 8base, H/8, W/8)
        x5 = self.down4(x4)  # (N, 16base, H/16, W/16)
        x = self.up1(x5, x4)  # (N, 8base, H/8, W/8)
        x = self.up2(x, x3)  # (N, 4base, H/4, W/4)
        x = self.up3(x, x2)  # (N, 2base, H/2, W/2)
        x = self.up4(x, x1)  # (N, base, H, W)
        return self.outc(x)  # (N, n_classes, H, W)
