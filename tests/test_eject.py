"""Eject: every shipped spec written as a standalone PyTorch file that, in a process where nncompile
cannot be imported, loads the compiled model's state_dict strictly (same keys, same order), gives the
same outputs, and scripts with TorchScript to the same outputs; the files pass ruff."""

from __future__ import annotations

import ast
import json
import keyword
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from conftest import ROOT, SPECS
from nncompile.compiler import analyze
from nncompile.compiler.eject import eject
from nncompile.compiler.eject.namespace import HELPERS
from nncompile.compiler.emit import emit, example_inputs
from zoo import ZOO

from nncompile.cli import main

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
        checks["nncompile imported"] = any(m.split(".")[0] in ("compiler", "runtime", "nncompile") for m in sys.modules)
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


def _job(analysis, text: str, folder: Path, stem: str) -> tuple[str, str, str, str]:
    """The ejected file and the compiled model's randomized weights, inputs and outputs, saved for
    CHILD to compare: (name, file, data, root class)."""
    file = folder / f"{stem}.py"
    file.write_text(text)
    module = emit(analysis.graph, analysis.registry).eval()
    _randomized(module)
    inputs = _inputs(module)
    with torch.no_grad():
        outputs = module(*inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    torch.save({"state": module.state_dict(), "inputs": inputs, "outputs": outputs}, folder / f"{stem}.pt")
    return stem, str(file), str(folder / f"{stem}.pt"), re.findall(r"^class (\w+)", text, re.MULTILINE)[-1]


def _compared(jobs: list[tuple[str, str, str, str]], folder: Path) -> dict[str, dict]:
    """CHILD's checks of every job, in one process where nncompile cannot be imported."""
    result = subprocess.run([sys.executable, "-c", CHILD, json.dumps(jobs)], capture_output=True, text=True, timeout=900, cwd=folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


PASSED = {"keys": True, "outputs": True, "torchscript": True, "nncompile imported": False}


@pytest.fixture(scope="module")
def ejected(tmp_path_factory) -> tuple[dict[str, dict], Path]:
    folder = tmp_path_factory.mktemp("ejected")
    jobs = []
    for spec in SHIPPED:
        analysis = analyze(spec, _small(spec))
        text = eject(analysis.graph, analysis.registry, analysis.document, f"nncompile build {spec.name} --emit python")
        jobs.append(_job(analysis, text, folder, spec.stem))
    return _compared(jobs, folder), folder


@pytest.mark.slow
@pytest.mark.parametrize("spec", SHIPPED, ids=lambda p: p.stem)
def test_ejected_module_loads_the_compiled_weights_and_matches(spec: Path, ejected):
    results, _ = ejected
    assert results[spec.stem] == PASSED


def _assert_ruff_passes(folder: Path) -> None:
    ruff = Path(sys.executable).parent / "ruff"
    files = sorted(str(f) for f in folder.glob("*.py"))
    for command in (["check", "--isolated"], ["format", "--isolated", "--check"]):
        result = subprocess.run([str(ruff), *command, *files], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_ejected_files_pass_ruff(ejected):
    _assert_ruff_passes(ejected[1])


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
    accepts ejects to a module that takes the compiled weights strictly and gives the same outputs (or,
    where the integer inputs' values make an index torch refuses, the same error)."""
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
        want, got = _outcome(compiled, inputs), _outcome(module.eval(), inputs)
        if isinstance(want, str):  # values check cannot see (an index below 0 reaching an embedding)
            assert got == want, seed
            continue
        assert all(torch.equal(a, b) or torch.allclose(a, b, equal_nan=True) for a, b in zip(want, got, strict=True)), seed
        compared += 1
    assert compared > 80


def _outcome(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...] | str:
    """The model's outputs, or the message of the error torch raised on these inputs' values."""
    try:
        with torch.no_grad():
            out = model(*inputs)
    except IndexError as error:
        return str(error)
    return out if isinstance(out, tuple) else (out,)


def test_every_helper_name_is_kept_free_in_forward():
    import inspect

    from nncompile.compiler import nn as helpers

    defined = {name for name, value in vars(helpers).items() if inspect.getmodule(value) is helpers and not name.startswith("_")}
    assert defined - {"initialize"} | {"Group"} == HELPERS  # and the namespace of a group


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


HOSTILE_NAMES = sorted(
    {
        *keyword.kwlist,
        *keyword.softkwlist,
        *("getattr", "super", "int", "float", "list", "tuple", "bool", "str", "len", "range", "print", "type", "object"),
        *("Exception", "input", "id", "sum", "max", "isinstance", "setattr", "self", "l", "I", "O", "x_2"),
        *("torch", "nn", "F", "Tensor", "Any", "Optional", "math", "normlinear"),
        *HELPERS,
        *("attention", "layer_norm2d", "stochastic_depth", "shifted_window_attention", "pad_to", "positions"),
        *("Module", "Linear", "Conv2d", "Sequential", "ModuleList", "Parameter", "ReLU", "LayerNorm", "Embedding"),
        *("MultiheadAttention", "Identity", "Dropout", "__class__", "__dict__", "__init__", "__x", "_x", "forward", "training"),
    }
)
"""Every Python keyword, a set of builtins, every name the ejected file imports (and typing's), every
helper it copies (and the ops they come from), a sample of torch.nn's classes and names Python treats
specially."""


def _blocks_spec(names: list[str]) -> dict:
    """A block per name (where check lets it name a block), whose parameter, input and a layer in a
    group take the name too where check lets them; each block copies the helpers Attention, StochasticDepth and cat,
    and is called twice, with two values of its parameter."""
    from nncompile.compiler.names import reserved
    from nncompile.compiler.ops import BUILTIN
    from nncompile.compiler.schema import LAYER_KEYS

    blocks, layers = {}, []
    for name in names:
        if name in BUILTIN.names:
            continue  # a block named like an op is E0309
        value = "width" if name in LAYER_KEYS or name == "not" else name  # E0305; `$not` does not parse
        own = "x" if reserved(name) else name  # E0312
        inner = "out" if own in ("x", "input") else own  # a group's input is `input`
        body = [
            {"id": "token", "op": "parameter", "shape": [1, 1, 8], "init": "arange"},
            {"id": "joined", "op": "concat", "from": ["token", own], "dim": 1},
            {"id": "fc", "op": "linear", "out": f"${value}"},
            {"id": "attn", "op": "scaled_dot_product_attention", "from": ["fc"] * 3},
            {"id": "drop", "op": "stochastic_depth", "p": 0.1},
            {"id": "group", "layers": [{"id": inner, "op": "linear", "out": 8}]},
            {"op": "slice", "dim": 1, "start": 1},
            {"op": "layernorm"},  # the values stay finite through the chain of blocks
        ]
        blocks[name] = {"params": {value: "int"}, "inputs": [own], "layers": body}
        layers += [{"op": name, value: 8}, {"id": own if own != "x" else None, "op": name, value: 6}]
    layers = [{k: v for k, v in layer.items() if v is not None} for layer in layers]
    return {"nncompile": 1, "name": "model", "inputs": {"x": [4, 8]}, "blocks": blocks, "layers": layers}


COLLIDING = {
    "nncompile": 1,
    "name": "conv_block",
    "inputs": {"x": [4, 8, 8]},
    "blocks": {
        "conv_block": {"layers": [{"op": "conv2d", "out": 4, "kernel": 1}]},
        "convBlock": {"layers": [{"op": "conv2d", "out": 4, "kernel": 1, "bias": False}]},
        "ConvBlock2": {"layers": [{"op": "layernorm2d"}]},
        "layer_norm2d": {"layers": [{"op": "layernorm2d"}]},
        "LayerNorm2d": {"layers": [{"op": "layernorm2d", "affine": False}]},
        "PadTo": {"layers": [{"op": "maxpool2d", "kernel": 2}, {"op": "pad", "from": [0, "input"]}]},
        "pad_to": {"layers": [{"op": "maxpool2d", "kernel": 2}, {"op": "pad", "from": [0, "input"]}, {"op": "relu"}]},
        "ShiftedWindowAttention": {"layers": [{"op": "shifted_window_attention", "heads": 2, "window": 4, "shift": 2}]},
    },
    "layers": [
        {"op": "conv_block"},
        {"op": "convBlock"},
        {"op": "ConvBlock2"},
        {"op": "layer_norm2d"},
        {"op": "LayerNorm2d"},
        {"op": "PadTo"},
        {"op": "pad_to"},
        {"op": "permute", "dims": [0, 2, 3, 1]},
        {"op": "ShiftedWindowAttention"},
    ],
}
"""Blocks whose classes collide with each other (`ConvBlock`), with the model's and with helpers the
file copies (LayerNorm2d, pad_to, ShiftedWindowAttention)."""


def _params_spec(names: list[str]) -> dict:
    """A model parameter per name (where check lets it name one), each the width of a layer: each
    is a keyword argument of the ejected root class."""
    from nncompile.compiler.schema import LAYER_KEYS

    usable = [name for name in names if name not in LAYER_KEYS and name != "not"]
    params = {name: 10 + index for index, name in enumerate(usable)}
    return {
        "nncompile": 1,
        "name": "model",
        "params": params,
        "inputs": {"x": [8]},
        "layers": [{"op": "linear", "out": f"${name}"} for name in usable],
    }


@pytest.mark.slow
def test_names_that_python_or_the_file_use_are_renamed_apart(tmp_path: Path, capsys):
    """Blocks, block and model parameters, inputs and layers named after keywords, builtins, the file's
    imports, its helpers and torch.nn's classes (wherever check accepts the name), and blocks whose
    classes collide: each spec ejects (through `build`, whose root class takes the model parameters)
    to a file that imports, constructs, loads the compiled weights strictly in the same order, gives
    the same outputs, scripts and passes ruff."""
    import yaml

    specs = {"blocks": _blocks_spec(HOSTILE_NAMES), "params": _params_spec(HOSTILE_NAMES), "colliding": COLLIDING}
    jobs = [_eject_job(yaml.safe_dump(spec, sort_keys=False), tmp_path, stem) for stem, spec in specs.items()]
    assert _compared(jobs, tmp_path) == dict.fromkeys(specs, PASSED)
    _assert_ruff_passes(tmp_path)
    text = {stem: (tmp_path / f"{stem}.py").read_text() for stem in specs}
    classes = re.findall(r"^class (\w+)\(", text["colliding"], re.MULTILINE)
    assert classes == [
        *("LayerNorm2d", "ShiftedWindowAttention", "ConvBlock", "ConvBlock2", "ConvBlock2_2", "LayerNorm2d_", "LayerNorm2d_2"),
        *("PadTo", "PadTo2", "ShiftedWindowAttention_", "ConvBlock3"),
    ]
    assert "def pad_to(" in text["colliding"]
    blocks = re.findall(r"^class (\w+)\(", text["blocks"], re.MULTILINE)
    assert {"Attention", "Attention_", "Attention_2", "None_", "Class", "Tensor_", "F_"} <= set(blocks)
    root = next(n for n in ast.parse(text["params"]).body if isinstance(n, ast.ClassDef) and n.name == "Model").body[1]
    keywords = [a.arg for a in root.args.args[1:]]
    assert len(keywords) == len(_params_spec(HOSTILE_NAMES)["params"])
    assert {"class_", "None_", "self_", "torch_", "nn_", "super_", "getattr_", "_x", "_class__", "Attention_"} <= set(keywords)


def _eject_job(text: str, folder: Path, stem: str) -> tuple[str, str, str, str]:
    """Eject the spec `text` with `build` (check must accept it) and make its job."""
    spec = folder / f"{stem}.yaml"
    spec.write_text(text)
    analysis = analyze(spec)
    assert analysis.ok, [d.message for d in analysis.diagnostics]
    assert main(["build", str(spec), "-o", str(folder / f"{stem}.py")]) == 0
    return _job(analysis, (folder / f"{stem}.py").read_text(), folder, stem)


def test_the_renaming_rule():
    """A reserved name gets `_`, a name given before a number (`_` before it after a digit); leading
    underscores are cut to one (Python would mangle `self.__x` inside a class)."""
    from nncompile.compiler.eject.namespace import class_name, python_name, reserved

    avoid = reserved(["normlinear.layers"])
    assert [python_name(name, avoid) for name in ("class", "None", "self", "torch", "getattr", "cat", "normlinear")] == [
        *("class_", "None_", "self_", "torch_", "getattr_", "cat_", "normlinear_"),
    ]
    assert [python_name(name, avoid) for name in ("input", "width", "__x", "__class__", "a-b.c")] == [
        "input",
        "width",
        "_x",
        "_class__",
        "a_b_c",
    ]
    assert python_name("0", avoid, "linear") == "linear"
    taken: list[str] = []
    for block in ("attention", "Attention", "conv_block", "convBlock", "conv_block2", "ConvBlock2", "true", "tensor", "f", "3x3"):
        taken.append(class_name(block, avoid, taken))
    assert taken == [
        *("Attention_", "Attention_2", "ConvBlock", "ConvBlock2", "ConvBlock2_2", "ConvBlock2_3", "True_", "Tensor_", "F_", "Block3x3"),
    ]
