"""Parity: the shipped ResNet specs are exactly torchvision's models."""

from __future__ import annotations

import pytest
import torch
import torchvision
from conftest import ROOT
from torch.utils.flop_counter import FlopCounterMode

from nncompile import compiler

MODELS = {"resnet18": (11_689_512, 1.814), "resnet50": (25_557_032, 4.089)}


@pytest.fixture(scope="module", params=sorted(MODELS))
def pair(request):
    torch.manual_seed(0)
    reference = getattr(torchvision.models, request.param)().eval()
    return request.param, compiler.build(ROOT / "specs" / f"{request.param}.yaml").eval(), reference


def test_state_dict_keys_and_shapes_match(pair):
    _, ours, reference = pair
    ours_sd, ref_sd = ours.state_dict(), reference.state_dict()
    assert list(ours_sd) == list(ref_sd)
    assert {k: v.shape for k, v in ours_sd.items()} == {k: v.shape for k, v in ref_sd.items()}


def test_loads_torchvision_weights_strictly_and_agrees(pair):
    _, ours, reference = pair
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert (ours(x) - reference(x)).abs().max().item() < 1e-5


def test_static_counts_match_torch(pair):
    name, ours, _ = pair
    analysis = compiler.analyze(ROOT / "specs" / f"{name}.yaml")
    params, gmacs = MODELS[name]
    assert analysis.graph.total_params == params == sum(p.numel() for p in ours.parameters())
    assert round(analysis.graph.total_macs / 1e9, 3) == gmacs
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        ours(torch.randn(1, 3, 224, 224))
    assert counter.get_total_flops() == 2 * analysis.graph.total_macs


def test_num_classes_override_changes_the_head():
    model = compiler.build(ROOT / "specs" / "resnet18.yaml", num_classes=10)
    assert model.fc.out_features == 10
    assert model(torch.randn(1, 3, 224, 224)).shape == (1, 10)


TORCHVISION_IN_CLEAN_PROCESS = """
import sys
sys.modules["nncompile"] = None  # the exported file must stand alone
import torch
model = torch.jit.load(sys.argv[1])
weights, x, expected = torch.load(sys.argv[2])
assert list(model.state_dict()) == list(weights)
model.load_state_dict(weights, strict=True)
with torch.no_grad():
    assert (model.eval()(x) - expected).abs().max().item() < 1e-5
print("ok")
"""


def test_cli_torchscript_is_torchvision_resnet18_in_a_clean_process(tmp_path):
    import subprocess
    import sys

    from nncompile.cli import main

    assert main(["build", str(ROOT / "specs" / "resnet18.yaml"), "-o", str(tmp_path / "r18.pt")]) == 0
    torch.manual_seed(1)
    reference = torchvision.models.resnet18().eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.save((reference.state_dict(), x, reference(x)), tmp_path / "io.pt")
    command = [sys.executable, "-c", TORCHVISION_IN_CLEAN_PROCESS, str(tmp_path / "r18.pt"), str(tmp_path / "io.pt")]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
