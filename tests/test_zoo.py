"""The zoo (`specs/zoo/`): every spec is exactly its reference (torchvision's model, torch's
TransformerEncoderLayer, nanoGPT, Ultralytics' YOLOv8n, a U-Net): the same state_dict keys in the same
order, a strict load of the reference's weights, the same outputs in eval mode, the documented parameter
count, FlopCounterMode's MACs (attention counted), gradients for every parameter, and exports that
reload in a process that cannot import nncompile."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
import torch
import torchvision
from nncompile.compiler.export import export
from zoo import ZOO, ZOO_DIR, counted_macs, inputs_for, macs_at, pair

from nncompile import compiler

NAMES = sorted(path.stem for path in ZOO_DIR.glob("*.yaml"))


def test_every_zoo_spec_has_a_reference():
    assert set(NAMES) == set(ZOO), "specs/zoo/ and tests/zoo.py ZOO must list the same models"


@pytest.fixture(scope="module", params=NAMES)
def built(request):
    name = request.param
    ours, reference = pair(name)
    return name, ours, reference


def test_keys_come_in_the_reference_order(built):
    _, ours, reference = built
    assert list(ours.state_dict()) == list(reference.state_dict())
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in reference.state_dict().items()}


def test_outputs_equal_the_reference(built):
    name, ours, reference = built
    x = inputs_for(ZOO[name])
    with torch.no_grad():
        mine, theirs = ours(*x), reference(*x)
    mine = list(mine) if isinstance(mine, (tuple, list)) else [mine]
    theirs = list(theirs) if isinstance(theirs, (tuple, list)) else [theirs]
    assert len(mine) == len(theirs)
    for a, b in zip(mine, theirs):
        assert a.shape == b.shape and (a - b).abs().max().item() <= ZOO[name].tolerance


def test_parameters_and_macs_are_counted_exactly(built):
    name, ours, reference = built
    entry = ZOO[name]
    analysis = compiler.analyze(ZOO_DIR / f"{name}.yaml", entry.overrides)
    total = sum(p.numel() for p in reference.parameters())
    assert analysis.graph.total_params == total == sum(p.numel() for p in ours.parameters())
    assert entry.params is None or total == entry.params
    x = tuple(t[:1] for t in inputs_for(entry))
    assert macs_at(analysis, ours, x) == counted_macs(ours, x)


def test_backward_reaches_every_trainable_parameter(built):
    name, ours, _ = built
    ours.train()
    try:
        output = ours(*inputs_for(ZOO[name]))
        outputs = output if isinstance(output, (tuple, list)) else [output]
        sum(o.float().square().mean() for o in outputs).backward()
        assert [n for n, p in ours.named_parameters() if p.requires_grad and p.grad is None] == []
    finally:
        ours.eval()
        ours.zero_grad(set_to_none=True)


CLEAN_PROCESS = """
import json, sys
sys.modules["nncompile"] = None  # what nncompile exported must run without it
import torch
import torchvision
import onnxruntime
for item in json.load(open(sys.argv[1])):
    inputs, expected = torch.load(item["io"])
    if item["format"] == ".pt":
        got = torch.jit.load(item["file"])(*inputs)
    elif item["format"] == ".pt2":
        got = torch.export.load(item["file"]).module()(*inputs)
    else:
        session = onnxruntime.InferenceSession(item["file"], providers=["CPUExecutionProvider"])
        feeds = {arg.name: t.numpy() for arg, t in zip(session.get_inputs(), inputs)}
        got = [torch.from_numpy(o) for o in session.run(None, feeds)]
    got = list(got) if isinstance(got, (tuple, list)) else [got]
    worst = max((a - b).abs().max().item() for a, b in zip(got, expected))
    assert len(got) == len(expected) and worst <= 1e-4, (item["file"], worst)
print("ok")
"""


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_exports_reload_in_a_clean_process(name, tmp_path):
    """TorchScript, torch.export and ONNX at a small configuration of the spec (the full-size exports
    of every zoo spec are run by benchmarks/zoo_exports.py; see BENCHMARKS.md)."""
    import json

    entry = ZOO[name]
    model = compiler.build(ZOO_DIR / f"{name}.yaml", **entry.export_overrides).eval()
    from nncompile.compiler.emit import example_inputs

    inputs = example_inputs(model)
    with torch.no_grad():
        expected = model(*inputs)
    expected = list(expected) if isinstance(expected, (tuple, list)) else [expected]
    torch.save((inputs, expected), tmp_path / "io.pt")
    manifest = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for suffix in (".pt", ".pt2", ".onnx"):
            export(model, inputs, tmp_path / f"{name}{suffix}")
            manifest.append({"file": str(tmp_path / f"{name}{suffix}"), "format": suffix, "io": str(tmp_path / "io.pt")})
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    result = subprocess.run(
        [sys.executable, "-c", CLEAN_PROCESS, str(tmp_path / "manifest.json")], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"


def test_the_unet_pads_like_its_reference_where_the_poolings_round_down(write_spec):
    """At 50x70 (no multiple of 16) each up block pads its upsampled map to the skip's size."""
    from references.unet import UNet

    text = (ZOO_DIR / "unet.yaml").read_text().replace("inputs: {image: [$n_channels, H, W]}", "inputs: {image: [$n_channels, 50, 70]}")
    text = text.split("sizes:")[0] + "blocks:" + text.split("blocks:", 1)[1]
    ours = compiler.build(write_spec(text), base=8).eval()
    torch.manual_seed(0)
    reference = UNet(n_channels=3, n_classes=2, base=8).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 50, 70)
    with torch.no_grad():
        assert (ours(x) - reference(x)).abs().max().item() <= 1e-5


@pytest.mark.parametrize(
    ("spec", "variant", "overrides"),
    [
        ("swin_t", "swin_s", {"depths": [2, 2, 18, 2], "stochastic_depth_prob": 0.3}),
        ("convnext_tiny", "convnext_small", {"depths": [3, 3, 27, 3], "stochastic_depth_prob": 0.4}),
        ("densenet121", "densenet169", {"block_config": [6, 12, 32, 32]}),
    ],
)
def test_a_larger_variant_is_the_same_spec_with_other_parameters(spec: str, variant: str, overrides: dict):
    """The stages are a loop over `depths`, as in torchvision: its larger variant is a --set away, exactly,
    down to each block's stochastic depth."""
    reference = torchvision.models.get_model(variant).eval()
    ours = compiler.build(ZOO_DIR / f"{spec}.yaml", H=64, W=64, **overrides).eval()
    assert list(ours.state_dict()) == list(reference.state_dict())
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert (ours(x) - reference(x)).abs().max().item() <= 1e-5

    def depths(model: torch.nn.Module) -> list[float]:
        return [m.p for m in model.modules() if type(m).__name__ == "StochasticDepth"]

    assert depths(ours)[:: 2 if spec == "swin_t" else 1] == depths(reference)  # Swin's block calls its one module twice
