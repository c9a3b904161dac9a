"""`nncompile build --weights`: a model trained with `nncompile train` exports with its weights to every
format (each reloaded in a clean process and compared with the trained model); torchvision's weight
files load into the zoo's specs; files that do not fit are refused with every mismatch listed."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from conftest import ROOT
from nncompile.compiler.emit import example_inputs
from nncompile.compiler.weights import state_dict_of

from nncompile import compiler
from nncompile.cli import main

DIGITS = ROOT / "specs" / "digits_mlp.yaml"
RESNET18 = ROOT / "specs" / "resnet18.yaml"

RELOAD = r"""
import json, sys
import onnxruntime
import torch

inputs = torch.load(sys.argv[1])
results = {}
for path in sys.argv[2:]:
    if path.endswith(".pt"):
        out = torch.jit.load(path)(inputs)
    elif path.endswith(".pt2"):
        out = torch.export.load(path).module()(inputs)
    else:
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        out = torch.from_numpy(session.run(None, {name: inputs.numpy()})[0])
    results[path] = out.tolist()
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("run")
    assert main(["train", str(DIGITS), "--out", str(run), "--set", "train.epochs=1"]) == 0
    return run


@pytest.mark.slow
def test_a_trained_model_exports_with_its_weights_to_every_format(trained: Path, tmp_path: Path, capsys):
    pytest.importorskip("onnxruntime")
    model = compiler.build(DIGITS).eval()
    model.load_state_dict(state_dict_of(trained / "best.pt"), strict=True)
    untrained = compiler.build(DIGITS).eval()
    (x,) = example_inputs(model, batch=4)
    with torch.no_grad():
        expected, before = model(x), untrained(x)
    assert not torch.allclose(expected, before)  # the weights are the trained ones, not a fresh init
    outputs = []
    for suffix in (".pt", ".pt2", ".onnx"):
        output = tmp_path / f"digits{suffix}"
        assert main(["build", str(DIGITS), "--weights", str(trained / "best.pt"), "-o", str(output)]) == 0
        assert f"with the weights of {trained / 'best.pt'}" in capsys.readouterr().out
        outputs.append(str(output))
    torch.save(x, tmp_path / "x.pt")
    result = subprocess.run([sys.executable, "-c", RELOAD, str(tmp_path / "x.pt"), *outputs], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    for path, values in json.loads(result.stdout).items():
        assert torch.allclose(torch.tensor(values), expected, atol=1e-5), path


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_torchvision_weights_load_into_the_resnet18_spec(tmp_path: Path, capsys):
    torch.manual_seed(0)
    reference = torchvision.models.resnet18().eval()
    weights = tmp_path / "resnet18-weights.pth"
    torch.save(reference.state_dict(), weights)
    output = tmp_path / "resnet18.pt"
    assert main(["build", str(RESNET18), "--weights", str(weights), "-o", str(output)]) == 0
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(torch.jit.load(str(output))(x), reference(x), atol=1e-5)


def test_a_renamed_layer_is_listed_with_a_guess(tmp_path: Path, capsys):
    state = compiler.build(DIGITS).state_dict()
    state["classifier.weight"] = state.pop("fc2.weight")
    state["fc1.bias"] = torch.zeros(3)
    weights = tmp_path / "renamed.pt"
    torch.save(state, weights)
    assert main(["build", str(DIGITS), "--weights", str(weights), "-o", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err
    assert "missing: fc2.weight" in err
    assert "unexpected: classifier.weight (did you mean 'fc2.weight'? (same shape))" in err
    assert "wrong shape: fc1.bias: the file has [3], the model [256]" in err
    assert "Traceback" not in err and not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize("content", [b"not a checkpoint", None])
def test_an_unreadable_weights_file_is_a_usage_error(tmp_path: Path, capsys, content: bytes | None):
    weights = tmp_path / "weights.pt"
    if content is not None:
        weights.write_bytes(content)
    assert main(["build", str(DIGITS), "--weights", str(weights), "-o", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err
    assert str(weights) in err and "Traceback" not in err


def test_a_pickle_that_is_not_weights_is_refused(tmp_path: Path, capsys):
    weights = tmp_path / "evil.pt"
    torch.save({"model": {"fc1.weight": datetime.timedelta(days=1)}}, weights)
    assert main(["build", str(DIGITS), "--weights", str(weights), "-o", str(tmp_path / "m.pt")]) == 2
    assert "holds objects other than tensors" in capsys.readouterr().err
