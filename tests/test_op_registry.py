"""Every builtin op has every fact, in its `OpDef`: parameters, shape rule, dtype rule, parameter and
MAC counts, emission, export limits (even if none), view-ness and a sample. A fact that can be held to
torch here is: the sample is built and run, its counts are torch's, and it is a view exactly where its
op says. A missing or wrong fact fails, naming the op and the fact."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
import torch
from nncompile.compiler import costs, pipeline
from nncompile.compiler.emit import LAYER_KEY, emit, example_inputs
from nncompile.compiler.ops import BUILTIN, FunctionEmit, ModuleEmit, OpDef, Registry, TensorEmit
from nncompile.compiler.ops.core import REQUIRED, no_count
from nncompile.compiler.ops.sample import DTYPES
from nncompile.compiler.targets import ExportLimit, ExportTarget
from op_samples import op_spec
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from nncompile import compiler

Problem = str | None


def _unbuilt(op: OpDef) -> str:
    return "no sample to hold it to" if op.sample is None else "its sample does not check or build"


def _params(op: OpDef, built: Built | None) -> Problem:
    """Each parameter's default is a value its schema takes."""
    for param in op.params:
        if param.default is not REQUIRED and not jsonschema.Draft202012Validator(dict(param.schema)).is_valid(param.default):
            return f"the default of '{param.name}' ({param.default!r}) is not valid by its schema"
    return None


def _shape_rule(op: OpDef, built: Built | None) -> Problem:
    if not callable(op.infer):
        return "no infer"
    return _unbuilt(op) if built is None else None


def _dtype_rule(op: OpDef, built: Built | None) -> Problem:
    if op.sample is None or set(op.sample.dtypes) != set(DTYPES):
        return f"its sample's dtypes must give each of {', '.join(DTYPES)} (None where refused)"
    return None


def _counts(op: OpDef, built: Built | None) -> Problem:
    """The sample's counted parameters and MACs (at batch 1) are the module's and FlopCounterMode's."""
    if built is None:
        return _unbuilt(op)
    counted, held = built.analysis.graph.total_params, sum(p.numel() for p in built.model.parameters())
    if counted != held:
        return f"counts {counted} parameters where the module holds {held}"
    with FlopCounterMode(display=False) as counter, sdpa_kernel([SDPBackend.MATH]):  # fused kernels hide their products
        built.model(*example_inputs(built.model, batch=1))
    if 2 * costs.macs(built.analysis.graph) != counter.get_total_flops():
        return f"counts {costs.macs(built.analysis.graph)} MACs where torch does {counter.get_total_flops() // 2}"
    return None


def _emission(op: OpDef, built: Built | None) -> Problem:
    if not isinstance(op.emit, ModuleEmit | FunctionEmit | TensorEmit):
        return "emit is not a ModuleEmit, FunctionEmit or TensorEmit"
    return None if built is not None else _unbuilt(op)


def _export_limits(op: OpDef, built: Built | None) -> Problem:
    if op.export_limits is None:
        return "not declared (() where it exports to every target)"
    for limit in op.export_limits:
        if not isinstance(limit, ExportLimit) or not isinstance(limit.target, ExportTarget) or not limit.reason:
            return f"{limit!r} is not an ExportLimit with a target and a reason"
    return None


def _view(op: OpDef, built: Built | None) -> Problem:
    """Declared, and true of the sample while training (when autograd keeps what it allocates)."""
    if op.view is None:
        return "not declared"
    if built is None:
        return _unbuilt(op)
    shares = built.sample_shares_input_storage()
    if shares == op.view:
        return None
    return f"declared {op.view}, but its sample's outputs {'do' if shares else 'do not'} share its input's storage"


def _sample(op: OpDef, built: Built | None) -> Problem:
    return "none" if op.sample is None else None


FACTS: dict[str, Callable[[OpDef, Built | None], Problem]] = {
    "params": _params,
    "shape rule": _shape_rule,
    "dtype rule": _dtype_rule,
    "counts": _counts,
    "emission": _emission,
    "export limits": _export_limits,
    "view-ness": _view,
    "sample": _sample,
}


@dataclasses.dataclass
class Built:
    """An op's sample, checked and built (in training mode)."""

    analysis: compiler.Analysis
    model: torch.fx.GraphModule

    def sample_shares_input_storage(self) -> bool:
        """Whether every tensor the sample layer makes shares the storage of one of the model's inputs."""
        inputs = example_inputs(self.model)
        values = _values(self.model, inputs)
        storages = {t.untyped_storage().data_ptr() for t in inputs}
        made = [value for key, value in values.items() if key == "sample" or key.startswith("sample.")]
        return bool(made) and all(isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() in storages for t in made)


def _values(model: torch.fx.GraphModule, inputs: tuple[torch.Tensor, ...]) -> dict[str, object]:
    """Each typed node's value in one forward pass, by the name the graph gives it."""
    values: dict[str, object] = {}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, node: torch.fx.Node) -> object:
            result = super().run_node(node)
            if node.meta.get(LAYER_KEY) is not None:
                values[node.meta[LAYER_KEY]] = result
            return result

    with torch.no_grad():
        Recorder(model).run(*inputs)
    return values


def _built(op: OpDef, folder: Path) -> Built | None:
    """The op's sample checked and built with its own definition (None where either fails)."""
    if op.sample is None:
        return None
    path = folder / f"{op.name}.yaml"
    path.write_text(op_spec(op))
    analysis = compiler.analyze(path)
    if not analysis.ok:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Built(analysis, emit(analysis.graph, analysis.registry).train())


def missing_facts(op: OpDef, folder: Path) -> list[str]:
    """What the op lacks or has wrong, fact by fact."""
    built = _built(op, folder)
    problems = ((fact, check(op, built)) for fact, check in FACTS.items())
    return [f"{fact}: {problem}" for fact, problem in problems if problem is not None]


@pytest.mark.parametrize("name", BUILTIN.names)
def test_every_builtin_op_has_every_fact(name: str, tmp_path: Path):
    missing = missing_facts(BUILTIN.get(name), tmp_path)
    assert not missing, f"op '{name}' lacks or has wrong: " + "; ".join(missing)


@pytest.mark.parametrize(
    ("name", "change", "fact"),
    [
        ("relu", {"view": None}, "view-ness: not declared"),
        ("flatten", {"view": False}, "view-ness: declared False, but its sample's outputs do share"),
        ("linear", {"view": True}, "view-ness: declared True, but its sample's outputs do not share"),
        ("relu", {"export_limits": None}, "export limits: not declared"),
        ("relu", {"sample": None}, "sample: none"),
        ("linear", {"count_params": no_count}, "counts: counts 0 parameters where the module holds 36"),
        ("conv2d", {"count_macs": no_count}, "counts: counts 0 MACs where torch does"),
    ],
)
def test_a_missing_or_wrong_fact_is_named(name: str, change: dict, fact: str, tmp_path: Path, monkeypatch):
    """The walk above can fail: an op changed to lack a fact (or to state it wrongly) is reported."""
    changed = dataclasses.replace(BUILTIN.get(name), **change)
    registry = Registry(changed if op.name == name else op for op in BUILTIN)
    monkeypatch.setattr(pipeline, "registry_with", lambda plugins=(), installed=True: registry)
    missing = missing_facts(changed, tmp_path)
    assert any(problem.startswith(fact) for problem in missing), missing
