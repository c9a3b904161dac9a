"""The zoo: every spec in `specs/zoo/` and the hand-written reference it must equal.

Used by `tests/test_zoo.py`, and as a command line while writing a spec:

    python tests/zoo.py convnext_tiny        # keys, strict load, outputs, params, MACs, backward
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from nncompile import compiler

ROOT = Path(__file__).resolve().parent.parent
ZOO_DIR = ROOT / "specs" / "zoo"
sys.path.insert(0, str(ROOT / "tests"))


@dataclass(frozen=True)
class Entry:
    """A zoo spec's reference: how to build it, the input shapes it is compared at (per sample, with
    dtypes), `--set` overrides that make the comparison cheaper, and the documented parameter count."""

    reference: Callable[[], nn.Module]
    inputs: tuple[tuple[tuple[int, ...], str], ...]
    overrides: dict[str, Any] = field(default_factory=dict)
    params: int | None = None
    tolerance: float = 1e-5
    export_overrides: dict[str, Any] = field(default_factory=dict)
    """A small configuration of the spec for the export tests (same ops and structure, fewer weights)."""


SMALL_IMAGE = {"H": 64, "W": 64, "num_classes": 10}
"""Exports of the image nets at 64×64 with 10 classes: every op and edge, fewer weights to write."""


def _torchvision(name: str, small: dict[str, Any]) -> Entry:
    weights = torchvision.models.get_model_weights(name).DEFAULT
    return Entry(
        lambda: torchvision.models.get_model(name),
        (((3, 224, 224), "float32"),),
        params=weights.meta["num_params"],
        export_overrides=small,
    )


def _gpt() -> nn.Module:
    from references.nanogpt import GPT, GPTConfig

    return GPT(GPTConfig(block_size=32, vocab_size=96, n_layer=2, n_head=4, n_embd=64, dropout=0.0, bias=True))


def _yolov8n() -> nn.Module:
    from references.yolov8 import YOLOv8

    return YOLOv8(nc=80, scale="n")


def _unet() -> nn.Module:
    from references.unet import UNet

    return UNet(n_channels=3, n_classes=2, base=64)


SMALL_GPT = {"block_size": 32, "vocab_size": 96, "n_layer": 2, "n_head": 4, "n_embd": 64}
SMALL_LAYER = {"d_model": 64, "nhead": 4, "dim_feedforward": 128}


def _encoder_layer(norm_first: bool) -> Callable[[], nn.Module]:
    return lambda: nn.TransformerEncoderLayer(512, 8, 2048, dropout=0.1, batch_first=True, norm_first=norm_first)


IMAGE_NETS = (
    "resnet34",
    "resnext50_32x4d",
    "wide_resnet50_2",
    "vgg11_bn",
    "alexnet",
    "squeezenet1_1",
    "densenet121",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "efficientnet_b0",
    "shufflenet_v2_x1_0",
    "regnet_y_400mf",
    "convnext_tiny",
    "vit_b_16",
    "swin_t",
)

SMALLER = {
    "vgg11_bn": SMALL_IMAGE | {"hidden": 64},
    "alexnet": SMALL_IMAGE | {"hidden": 64},
    "resnext50_32x4d": SMALL_IMAGE | {"width_per_group": 1},
    "wide_resnet50_2": SMALL_IMAGE | {"width_per_group": 8},
    "vit_b_16": {"image_size": 32, "patch_size": 8, "num_layers": 2, "num_heads": 4, "hidden_dim": 64, "mlp_dim": 128, "num_classes": 10},
}

ZOO: dict[str, Entry] = {
    **{name: _torchvision(name, SMALLER.get(name, SMALL_IMAGE)) for name in IMAGE_NETS},
    # torchvision's googlenet() builds the auxiliary heads unless told not to; its documented
    # 6,624,904 parameters (and its pretrained weights) are without them.
    "googlenet": Entry(
        lambda: torchvision.models.googlenet(aux_logits=False, init_weights=False),
        (((3, 224, 224), "float32"),),
        params=6_624_904,
        export_overrides=SMALL_IMAGE,
    ),
    "transformer_encoder_layer": Entry(_encoder_layer(False), (((10, 512), "float32"),), params=3_152_384, export_overrides=SMALL_LAYER),
    "transformer_encoder_layer_pre_norm": Entry(
        _encoder_layer(True), (((10, 512), "float32"),), params=3_152_384, export_overrides=SMALL_LAYER
    ),
    "gpt": Entry(_gpt, (((32,), "int64"),), overrides=SMALL_GPT, export_overrides=SMALL_GPT),
    "yolov8n": Entry(
        _yolov8n, (((3, 256, 320), "float32"),), overrides={"H": 256, "W": 320}, params=3_157_200, export_overrides={"H": 64, "W": 96}
    ),
    "unet": Entry(
        _unet, (((3, 64, 96), "float32"),), overrides={"H": 64, "W": 96}, params=31_037_698, export_overrides={"base": 8, "H": 32, "W": 48}
    ),
}


def inputs_for(entry: Entry, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    values = []
    for shape, dtype in entry.inputs:
        if dtype == "int64":
            values.append(torch.randint(0, 64, (batch, *shape), generator=generator))
        else:
            values.append(torch.randn(batch, *shape, generator=generator))
    return tuple(values)


def pair(name: str) -> tuple[nn.Module, nn.Module]:
    """The compiled spec and its reference, both in eval mode, the spec holding the reference's weights."""
    entry = ZOO[name]
    torch.manual_seed(0)
    reference = entry.reference().eval()
    ours = compiler.build(ZOO_DIR / f"{name}.yaml", **entry.overrides).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    return ours, reference


def counted_macs(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> int:
    """FlopCounterMode's MACs, with attention run by its math kernel so that its matrix products are
    counted (fused CPU kernels and nn.MultiheadAttention's no-grad fast path are invisible to it)."""
    with FlopCounterMode(display=False) as counter, sdpa_kernel([SDPBackend.MATH]):
        model(*inputs)
    return counter.get_total_flops() // 2


def report(name: str) -> dict[str, Any]:
    """Everything the zoo test asserts, as numbers, for a person writing a spec."""
    entry = ZOO[name]
    path = ZOO_DIR / f"{name}.yaml"
    analysis = compiler.analyze(path, entry.overrides)
    if not analysis.ok:
        return {"diagnostics": [f"{d.code} {d.message}" for d in analysis.diagnostics]}
    torch.manual_seed(0)
    reference = entry.reference().eval()
    ours = compiler.build(path, **entry.overrides).eval()
    ours_keys, reference_keys = list(ours.state_dict()), list(reference.state_dict())
    result: dict[str, Any] = {"keys_equal": ours_keys == reference_keys}
    if ours_keys != reference_keys:
        first = next((i for i, (a, b) in enumerate(zip(ours_keys, reference_keys)) if a != b), min(len(ours_keys), len(reference_keys)))
        result["first_difference"] = (first, ours_keys[first : first + 3], reference_keys[first : first + 3])
        result["only_ours"] = sorted(set(ours_keys) - set(reference_keys))[:10]
        result["only_reference"] = sorted(set(reference_keys) - set(ours_keys))[:10]
        return result
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = inputs_for(entry)
    with torch.no_grad():
        result["max_difference"] = max((a - b).abs().max().item() for a, b in zip(_flat(ours(*x)), _flat(reference(*x))))
    result["params"] = (analysis.graph.total_params, sum(p.numel() for p in reference.parameters()), entry.params)
    result["macs"] = (macs_at(analysis, ours, x), counted_macs(ours, tuple(t[:1] for t in x)))
    return result


def macs_at(analysis: compiler.Analysis, model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> int:
    """The spec's MACs per sample at the sizes of `inputs` (symbolic sizes take the inputs' values)."""
    total = analysis.graph.total_macs
    if isinstance(total, int):
        return total
    point = {}
    for (declared, _), tensor in zip(model.nncompile_inputs.values(), inputs):
        point.update((size, actual) for size, actual in zip(declared, tensor.shape[1:]) if isinstance(size, str))
    return total.at(point)


def _flat(value: Any) -> list[torch.Tensor]:
    return [value] if isinstance(value, torch.Tensor) else [t for item in value for t in _flat(item)]


if __name__ == "__main__":
    for zoo_name in sys.argv[1:] or sorted(ZOO):
        print(zoo_name, report(zoo_name))
