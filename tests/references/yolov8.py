"""Hand-written PyTorch reference of the Ultralytics YOLOv8 detection model.

Mirrors ``DetectionModel("yolov8{n,s,m,l,x}.yaml")`` as built from ``ultralytics/cfg/models/v8/yolov8.yaml``:
the 23 layers live in ``self.model`` (an ``nn.Sequential``) with Ultralytics' module names, so
``state_dict()`` keys, their order and their shapes are identical and Ultralytics weights load with
``strict=True``.

``forward`` is the training-mode forward: it returns the three raw per-level Detect outputs
``cat(cv2[i](x), cv3[i](x))`` of shape ``[B, 4 * 16 + nc, H / s, W / s]`` for strides s = 8, 16, 32.
The inference-time box decoding (DFL softmax, anchors, strides) is deliberately left out.

YOLOv8n with nc=80 has exactly 3,157,200 parameters (including the DFL's 16 frozen ones).
"""

import math

import torch
from torch import nn

# scale: (depth multiple, width multiple, max channels), as in yolov8.yaml
SCALES: dict[str, tuple[float, float, int]] = {
    "n": (0.33, 0.25, 1024),
    "s": (0.33, 0.50, 1024),
    "m": (0.67, 0.75, 768),
    "l": (1.00, 1.00, 512),
    "x": (1.00, 1.25, 512),
}

REG_MAX = 16  # DFL bins per box side


def make_divisible(x: float, divisor: int = 8) -> int:
    """Smallest multiple of ``divisor`` that is >= ``x`` (Ultralytics' rounding)."""
    return math.ceil(x / divisor) * divisor


class Conv(nn.Module):
    """Conv2d (no bias, 'same' padding) -> BatchNorm2d -> SiLU."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=0.001, momentum=0.03)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    """Two 3x3 Convs at constant width ``c`` (expansion 1.0, as C2f uses it), with an optional residual."""

    def __init__(self, c: int, shortcut: bool) -> None:
        super().__init__()
        self.cv1 = Conv(c, c, 3)
        self.cv2 = Conv(c, c, 3)
        self.add = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f(nn.Module):
    """CSP block: 1x1 Conv to 2c, split in halves, chain n Bottlenecks on the last piece, concat all, 1x1 Conv."""

    def __init__(self, c1: int, c2: int, n: int, shortcut: bool = False) -> None:
        super().__init__()
        self.c = c2 // 2  # hidden channels, int(c2 * 0.5)
        # Registration order cv1, cv2, m matters: it is the state_dict order.
        self.cv1 = Conv(c1, 2 * self.c, 1)
        self.cv2 = Conv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(Bottleneck(self.c, shortcut) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        for m in self.m:
            y.append(m(y[-1]))
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    """Spatial pyramid pooling (fast): one MaxPool2d module applied three times in a row."""

    def __init__(self, c1: int, c2: int, k: int = 5) -> None:
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1)
        self.cv2 = Conv(c_ * 4, c2, 1)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv1(x)]
        for _ in range(3):
            y.append(self.m(y[-1]))
        return self.cv2(torch.cat(y, 1))


class Concat(nn.Module):
    """Parameter-free concatenation of a list of tensors along ``dimension``."""

    def __init__(self, dimension: int = 1) -> None:
        super().__init__()
        self.d = dimension

    def forward(self, x: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(x, self.d)


class DFL(nn.Module):
    """Distribution Focal Loss integral: a frozen 1x1 conv with weights 0..c1-1.

    Only used by the inference-time box decoding, which this reference omits; it is kept for state_dict parity.
    """

    def __init__(self, c1: int = REG_MAX) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, 1, 1, bias=False).requires_grad_(False)
        self.conv.weight.data[:] = torch.arange(c1, dtype=torch.float).view(1, c1, 1, 1)


class Detect(nn.Module):
    """Decoupled head: per level, a box branch (cv2, 4 * REG_MAX outputs) and a class branch (cv3, nc outputs)."""

    def __init__(self, nc: int, ch: tuple[int, ...]) -> None:
        super().__init__()
        self.nc = nc
        self.nl = len(ch)
        c2 = max(16, ch[0] // 4, REG_MAX * 4)  # box branch width
        c3 = max(ch[0], min(nc, 100))  # class branch width
        self.cv2 = nn.ModuleList(nn.Sequential(Conv(c, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * REG_MAX, 1)) for c in ch)
        self.cv3 = nn.ModuleList(nn.Sequential(Conv(c, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, nc, 1)) for c in ch)
        self.dfl = DFL(REG_MAX)

    def forward(self, x: list[torch.Tensor]) -> list[torch.Tensor]:
        return [torch.cat((self.cv2[i](x[i]), self.cv3[i](x[i])), 1) for i in range(self.nl)]


class YOLOv8(nn.Module):
    """YOLOv8 detection model; ``self.model`` holds the 23 layers of yolov8.yaml in order."""

    def __init__(self, nc: int = 80, scale: str = "n") -> None:
        super().__init__()
        depth, width, max_channels = SCALES[scale]

        def ch(c: int) -> int:
            """Scaled channel count of a yaml width."""
            return make_divisible(min(c, max_channels) * width, 8)

        def rep(n: int) -> int:
            """Scaled repeat count of a yaml depth."""
            return max(round(n * depth), 1) if n > 1 else n

        self.model = nn.Sequential(
            # backbone
            Conv(3, ch(64), 3, 2),  # 0  P1/2
            Conv(ch(64), ch(128), 3, 2),  # 1  P2/4
            C2f(ch(128), ch(128), rep(3), shortcut=True),  # 2
            Conv(ch(128), ch(256), 3, 2),  # 3  P3/8
            C2f(ch(256), ch(256), rep(6), shortcut=True),  # 4
            Conv(ch(256), ch(512), 3, 2),  # 5  P4/16
            C2f(ch(512), ch(512), rep(6), shortcut=True),  # 6
            Conv(ch(512), ch(1024), 3, 2),  # 7  P5/32
            C2f(ch(1024), ch(1024), rep(3), shortcut=True),  # 8
            SPPF(ch(1024), ch(1024), 5),  # 9
            # head
            nn.Upsample(scale_factor=2, mode="nearest"),  # 10
            Concat(1),  # 11 cat(10, 6)
            C2f(ch(1024) + ch(512), ch(512), rep(3)),  # 12
            nn.Upsample(scale_factor=2, mode="nearest"),  # 13
            Concat(1),  # 14 cat(13, 4)
            C2f(ch(512) + ch(256), ch(256), rep(3)),  # 15 P3/8 out
            Conv(ch(256), ch(256), 3, 2),  # 16
            Concat(1),  # 17 cat(16, 12)
            C2f(ch(256) + ch(512), ch(512), rep(3)),  # 18 P4/16 out
            Conv(ch(512), ch(512), 3, 2),  # 19
            Concat(1),  # 20 cat(19, 9)
            C2f(ch(512) + ch(1024), ch(1024), rep(3)),  # 21 P5/32 out
            Detect(nc, (ch(256), ch(512), ch(1024))),  # 22 Detect(15, 18, 21)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        m = self.model
        x = m[2](m[1](m[0](x)))
        y4 = m[4](m[3](x))
        y6 = m[6](m[5](y4))
        y9 = m[9](m[8](m[7](y6)))
        y12 = m[12](m[11]([m[10](y9), y6]))
        y15 = m[15](m[14]([m[13](y12), y4]))
        y18 = m[18](m[17]([m[16](y15), y12]))
        y21 = m[21](m[20]([m[19](y18), y9]))
        return m[22]([y15, y18, y21])
