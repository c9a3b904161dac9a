"""Eject: every shipped spec written as a standalone PyTorch file that, in a process where nncompile
cannot be imported, loads the compiled model's state_dict strictly (same keys, same order), gives the
same outputs, and scripts with TorchScript to the same outputs; the files pass ruff."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from conftest import ROOT, SPECS
from zoo import ZOO

import compiler
from compiler import analyze
from compiler.eject import eject
from compiler.emit import emit, example_inputs
from runtime.cli import main

SHIPPED = [*SPECS, *sorted((ROOT / "specs" / "zoo").glob("*.yaml"))]

CHILD = r"""
import importlib.abc, importlib.util, json, sys

class NoNncompile(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("compiler", "runtime", "nncompile"):
            raise ImportError(f"{name} must not be needed by an ejected module")

sys.meta_path.insert(0, NoNncompile())
import torch

def run(model, inputs):
    out = model(*inputs)
    return out if isinstance(out, tuple) else (out,)

results = {}
for name, file, data, cls in json.loads(sys.argv[1]):
    try:
        spec = importlib.util.spec_from_file_location(f"ejected_{name}", file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        saved = torch.load(data)
        model = getattr(module, cls)().eval()
        model.load_state_dict(saved["state"], strict=True)
        checks = {"keys": list(model.state_dict()) == list(saved["state"])}
        with torch.no_grad():
            checks["outputs"] = all(torch.equal(a, b) for a, b in zip(run(model, saved["inputs"]), saved["outputs"], strict=True))
            scripted = torch.jit.script(model)
            checks["torchscript"] = all(torch.equal(a, b) for a, b in zip(run(scripted, saved["inputs"]), saved["outputs"], strict=True))
        checks["nncompile imported"] = any(m.split(".")[0] in ("compiler", "runtime") for m in sys.modules)
        results[name] = checks
    except Exception as error:
        results[name] = {"error": f"{type(error).__name__}: {error}"}
print(json.dumps(results))
"""


def _small(spec: Path) -> dict:
    entry = ZOO.get(spec.stem) if spec.parent.name == "zoo" else None
    return dict(entry.export_overrides) if entry else {}


def _inputs(module: torch.nn.Module) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(1)
    values = []
    for tensor in example_inputs(module, batch=2):
        if tensor.dtype.is_floating_point:
            values.append(tensor)
        else:
            values.append(torch.randint(0, 8, tensor.shape, generator=generator, dtype=tensor.dtype))
    return tuple(values)


def _randomized(module: torch.nn.Module) -> None:
    """Weights and batch-norm statistics away from their initial values (variances kept positive)."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for value in module.state_dict().values():
            if value.dtype.is_floating_point:
                value.copy_(torch.rand(value.shape, generator=generator) + 0.5)


@pytest.fixture(scope="module")
def ejected(tmp_path_factory) -> tuple[dict[str, dict], Path]:
    folder = tmp_path_factory.mktemp("ejected")
    jobs = []
    for spec in SHIPPED:
        analysis = analyze(spec, _small(spec))
        text = eject(analysis.graph, analysis.registry, analysis.document, f"nncompile build {spec.name} --emit python")
        file = folder / f"{spec.stem}.py"
        file.write_text(text)
        module = emit(analysis.graph, analysis.registry).eval()
        _randomized(module)
        inputs = _inputs(module)
        with torch.no_grad():
            outputs = module(*inputs)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        torch.save({"state": module.state_dict(), "inputs": inputs, "outputs": outputs}, folder / f"{spec.stem}.pt")
        root_class = re.findall(r"^class (\w+)", text, re.MULTILINE)[-1]
        jobs.append((spec.stem, str(file), str(folder / f"{spec.stem}.pt"), root_class))
    result = subprocess.run([sys.executable, "-c", CHILD, json.dumps(jobs)], capture_output=True, text=True, timeout=900, cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout), folder


@pytest.mark.slow
@pytest.mark.parametrize("spec", SHIPPED, ids=lambda p: p.stem)
def test_ejected_module_loads_the_compiled_weights_and_matches(spec: Path, ejected):
    results, _ = ejected
    assert results[spec.stem] == {"keys": True, "outputs": True, "torchscript": True, "nncompile imported": False}


@pytest.mark.slow
def test_ejected_files_pass_ruff(ejected):
    _, folder = ejected
    ruff = Path(sys.executable).parent / "ruff"
    files = sorted(str(f) for f in folder.glob("*.py"))
    for command in (["check", "--isolated"], ["format", "--isolated", "--check"]):
        result = subprocess.run([str(ruff), *command, *files], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def _load(file: Path, name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ejected_resnet18_reads_like_torchvision_and_takes_its_weights(tmp_path: Path, capsys):
    file = tmp_path / "resnet18.py"
    assert main(["build", str(ROOT / "specs" / "resnet18.yaml"), "--emit", "python", "-o", str(file)]) == 0
    text = file.read_text()
    assert re.findall(r"^class (\w+)\(nn.Module\)", text, re.MULTILINE) == ["Basic", "Resnet18"]
    tree = ast.parse(text)
    basic = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Basic")
    init = next(node for node in basic.body if isinstance(node, ast.FunctionDef) and node.name == "__init__")
    assert [(a.arg, ast.unparse(a.annotation)) for a in init.args.args[1:]] == [
        ("in_channels", "int"),
        ("width", "int"),
        ("stride", "int"),
        ("downsample", "bool"),
    ]
    assert "if self.downsample is not None:" in text
    assert "self.layer2 = nn.Sequential(" in text
    assert "def __init__(self, num_classes: int = 1000) -> None:" in text
    assert "# (B, 64, 56, 56)" in text
    module = _load(file, "ejected_resnet18")
    ours = module.Resnet18().eval()
    torch.manual_seed(0)
    reference = torchvision.models.resnet18().eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(ours(x), reference(x))
    small = module.Resnet18(num_classes=10)
    assert small.fc.out_features == 10
    readme = (ROOT / "README.md").read_text()
    excerpt = re.search(r"## Eject to plain PyTorch.*?```py\n(.*?)```", readme, re.S).group(1)
    shown = [line for line in excerpt.splitlines() if line.strip() not in ("", "...")]
    assert len(shown) > 30 and all(line in text.splitlines() for line in shown)  # the README shows the real file


def test_a_py_output_ejects_and_weights_do_not_go_with_it(tmp_path: Path, capsys):
    spec = str(ROOT / "specs" / "mnist_mlp.yaml")
    assert main(["build", spec, "-o", str(tmp_path / "mlp.py")]) == 0
    assert "class MnistMlp(nn.Module):" in (tmp_path / "mlp.py").read_text()
    assert main(["build", spec, "-o", str(tmp_path / "mlp2.py"), "--weights", "w.pt"]) == 2
    assert "--weights goes with .pt, .pt2 and .onnx" in capsys.readouterr().err


def test_plugin_ops_are_imported_from_their_module(tmp_path: Path):
    analysis = analyze(ROOT / "tests" / "specs" / "normalized_mlp.yaml", plugins=("normlinear",))
    text = eject(analysis.graph, analysis.registry, analysis.document, "nncompile build")
    assert "import normlinear.layers" in text
    assert "self.fc1 = normlinear.layers.NormalizedLinear(784, 128)" in text
    model = _load_text(tmp_path, text, "NormalizedMlp")
    compiled = emit(analysis.graph, analysis.registry)
    model.load_state_dict(compiled.state_dict(), strict=True)
    x = torch.randn(2, 1, 28, 28)
    assert torch.equal(model(x), compiled(x))


def _load_text(tmp_path: Path, text: str, cls: str, name: str = "model"):
    file = tmp_path / f"{name}.py"  # a file of its own: a rewritten one could be read from a stale cache
    file.write_text(text)
    return getattr(_load(file, f"ejected_{name}"), cls)()


def test_an_activation_some_calls_omit_becomes_a_flag():
    analysis = analyze(ROOT / "specs" / "zoo" / "regnet_y_400mf.yaml")
    text = eject(analysis.graph, analysis.registry, analysis.document, "nncompile build")
    block = text[text.index("class ConvNormAct(") : text.index("\nclass ", text.index("class ConvNormAct("))]
    assert "relu: bool" in block and "self.relu = relu" in block and "if self.relu:" in block
    assert "class ConvNormAct2(" not in text  # the calls with and without the activation share the class


@pytest.mark.slow
def test_generated_specs_eject_to_the_same_model(tmp_path: Path):
    """Specs from the shape proof's generator (every op, blocks, repeats, conditions): each one check
    accepts ejects to a module that takes the compiled weights strictly and gives the same outputs."""
    import yaml
    from shapegen import generate

    compared = 0
    for seed in range(150):
        case = generate(seed)
        path = tmp_path / f"{seed}.yaml"
        path.write_text(yaml.safe_dump(case.spec, sort_keys=False))
        analysis = analyze(path, case.overrides)
        if not analysis.ok:
            continue
        text = eject(analysis.graph, analysis.registry, analysis.document, "nncompile build")
        module = _load_text(tmp_path, text, re.findall(r"^class (\w+)", text, re.MULTILINE)[-1], f"generated_{seed}")
        compiled = emit(analysis.graph, analysis.registry).eval()
        _randomized(compiled)
        module.load_state_dict(compiled.state_dict(), strict=True)
        assert list(module.state_dict()) == list(compiled.state_dict()), seed
        inputs = example_inputs(compiled, batch=2)
        with torch.no_grad():
            want, got = compiled(*inputs), module.eval()(*inputs)
        want, got = (want if isinstance(want, tuple) else (want,)), (got if isinstance(got, tuple) else (got,))
        assert all(torch.equal(a, b) or torch.allclose(a, b, equal_nan=True) for a, b in zip(want, got, strict=True)), seed
        compared += 1
    assert compared > 80


@pytest.mark.parametrize(
    ("spec", "keywords", "change"),
    [
        ("specs/mnist_mlp.yaml", ["hidden", "num_classes"], {"hidden": 64, "num_classes": 3}),
        ("specs/zoo/transformer_encoder_layer.yaml", ["dim_feedforward", "dropout"], {"dim_feedforward": 256}),
    ],
)
def test_the_root_takes_only_parameters_that_really_configure_it(tmp_path: Path, spec: str, keywords: list[str], change: dict):
    """A model parameter becomes a keyword argument only where building with another value changes
    nothing else in the file: the transformer layer's d_model sizes values computed from it, so it is
    not one (an argument that built a broken model would be worse than a literal)."""
    file = tmp_path / "model.py"
    assert main(["build", str(ROOT / spec), "-o", str(file)]) == 0
    text = file.read_text()
    root = re.findall(r"^class (\w+)", text, re.MULTILINE)[-1]
    init = next(n for n in ast.parse(text).body if isinstance(n, ast.ClassDef) and n.name == root).body[1]
    assert [a.arg for a in init.args.args[1:]] == keywords
    ejected = getattr(_load(file, f"ejected_{Path(spec).stem}_keywords"), root)(**change)
    compiled = compiler.build(ROOT / spec, **change)
    ejected.load_state_dict(compiled.state_dict(), strict=True)


def test_every_helper_name_is_kept_free_in_forward():
    import inspect

    from compiler import nn as helpers
    from compiler.eject.render import HELPER_NAMES

    defined = {name for name, value in vars(helpers).items() if inspect.getmodule(value) is helpers and not name.startswith("_")}
    assert defined - {"initialize"} == HELPER_NAMES


@pytest.mark.parametrize(
    ("spec", "copied", "left_out"),
    [("gpt", {"Attention", "reshape", "positions"}, {"cat"}), ("swin_t", {"ShiftedWindowAttention"}, {"Attention", "cat"})],
)
def test_only_the_helpers_the_model_calls_are_copied(spec: str, copied: set[str], left_out: set[str]):
    analysis = analyze(ROOT / "specs" / "zoo" / f"{spec}.yaml")
    text = eject(analysis.graph, analysis.registry, analysis.document, "nncompile build")
    defined = set(re.findall(r"^(?:class|def) (\w+)", text, re.MULTILINE))
    assert copied <= defined
    assert not left_out & defined
