"""Export to each `targets.ExportTarget` (TorchScript .pt, torch.export .pt2, ONNX .onnx), each verified
by reloading the file and comparing its outputs with the eager module's; only a verified file is
renamed into place.
The batch dimension is dynamic in every format; so are symbolic sizes (`torch.export.Dim` with the
declared range and multiple, ONNX dynamic axes), and a model with symbolic sizes is verified at two sizes."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import torch

from .files import replacing, staging
from .targets import SUFFIXES, ExportTarget

TOLERANCE = 1e-4


class ExportError(Exception):
    """An export failed, or its reloaded outputs disagree with the eager module's."""


@contextmanager
def quiet_torchscript() -> Iterator[None]:
    """TorchScript is deprecated upstream but still what C++ and mobile users load: we emit it on
    purpose, so its deprecation notices (and fx's harmless attribute-annotation warnings) are
    silenced here, and only here. torch.export (.pt2) is the modern path."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning)
        warnings.filterwarnings("ignore", message="The TorchScript type system doesn't support instance-level", category=UserWarning)
        yield


def export(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], path: str | Path, kind: ExportTarget | str | None = None) -> str:
    """Write `module` to `path` as target `kind` (by default the one its suffix names) through a
    temporary file beside it, verify that file, and only then rename it onto `path` (a failed export
    leaves `path` as it was; a link planted there is replaced, never written through); return the
    target's title."""
    path = Path(path)
    target = ExportTarget(kind) if kind is not None else SUFFIXES.get(path.suffix)
    if target is None:
        raise ExportError(f"unknown output format '{path.suffix}': use one of {', '.join(SUFFIXES)}")
    module = module.eval()
    checks = [inputs, *_other_sizes(module, inputs)]
    with torch.no_grad():
        expected = [module(*each) for each in checks]
        with _staged(path, target) as staged:
            run = _written(module, inputs, staged, path, target)
            for each, want in zip(checks, expected):
                _compare(want, _reloaded(run, each, path, target), path, each)
    return target.title


def _written(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], staged: Path, path: Path, target: ExportTarget) -> Callable:
    """Export to `staged`; return a function that runs the file reloaded. Errors name `path`."""
    try:
        return EXPORTERS[target](module, inputs, staged)
    except ExportError:
        raise
    except Exception as error:  # the exporter refuses the model: a failed export, reported as one
        detail = str(error).strip().splitlines()
        shown = next((line.strip() for line in detail if line.strip() and not line.startswith(" ")), type(error).__name__)
        raise ExportError(f"{path}: {target.title} cannot export this model: {shown[:300]}") from None


def _staged(path: Path, target: ExportTarget) -> AbstractContextManager[Path]:
    """Where to export before the file is verified and renamed onto `path`: ONNX writes the weights
    beside the model, in a file named after the one it is given, so it is staged in a folder."""
    return staging(path) if target is ExportTarget.ONNX else replacing(path)


def _reloaded(run, inputs: tuple[torch.Tensor, ...], path: Path, target: ExportTarget):
    """The reloaded export's outputs; one that fails to run is a failed export, not a crash."""
    try:
        return run(inputs)
    except Exception as error:  # the runtime of the exported format (TorchScript, ONNX Runtime) refuses the inputs
        shapes = ", ".join(str(list(t.shape)) for t in inputs)
        detail = str(error).strip().splitlines()[-1][:300] if str(error).strip() else type(error).__name__
        hint = " (symbolic sizes: fix them with --set to export this format with fixed shapes)" if len(inputs[0].shape) > 1 else ""
        raise ExportError(f"{path}: the reloaded {target.title} model fails at inputs {shapes}: {detail}{hint}") from None


def _other_sizes(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> list[tuple[torch.Tensor, ...]]:
    """Inputs at a second value of every symbolic size (none without symbolic sizes)."""
    from .emit import example_inputs

    sizes = getattr(module, "nncompile_sizes", {})
    if not sizes:
        return []
    second = {}
    for name, record in sizes.items():
        step, default = record["multiple_of"], record["default"]
        second[name] = default + step if default + step <= record["max"] else default - step
    return [example_inputs(module, batch=inputs[0].shape[0] + 1, seed=1, sizes=second)]


def _dynamic_shapes(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[dict[int, Any], ...]:
    """The batch, and every dimension declared with a symbolic size, as torch.export dims."""
    batch = torch.export.Dim("batch", min=1, max=65536)
    dims = {name: _export_dim(name, record) for name, record in getattr(module, "nncompile_sizes", {}).items()}
    declared = list(getattr(module, "nncompile_inputs", {}).values()) or [([], None)] * len(inputs)
    return tuple({0: batch} | {i + 1: dims[s] for i, s in enumerate(shape) if isinstance(s, str)} for shape, _ in declared)


def _export_dim(name: str, record: dict[str, int]) -> Any:
    step = record["multiple_of"]
    low, high = -(-record["min"] // step), record["max"] // step
    if step == 1:
        return torch.export.Dim(name, min=low, max=high)
    return step * torch.export.Dim(f"{name}_over_{step}", min=low, max=high)


def _torchscript(module, inputs, path):
    with quiet_torchscript():
        torch.jit.script(module).save(str(path))
        reloaded = torch.jit.load(str(path))
    return lambda each: reloaded(*each)


def _torch_export(module, inputs, path):
    program = torch.export.export(module, inputs, dynamic_shapes=_dynamic_shapes(module, inputs))
    torch.export.save(program, str(path))
    reloaded = torch.export.load(str(path)).module()
    return lambda each: reloaded(*each)


class _OutputsCopied(torch.nn.Module):
    """The module with its outputs copied: ONNX refuses a graph whose output is one of its inputs (a
    model that returns an input unchanged, as `identity` or dropout in eval mode do)."""

    def __init__(self, module: torch.nn.Module):
        super().__init__()
        self.module = module

    def forward(self, *inputs: torch.Tensor) -> Any:
        outputs = self.module(*inputs)
        return tuple(o.clone() for o in outputs) if isinstance(outputs, tuple) else outputs.clone()


def _onnx(module, inputs, path):
    try:
        import onnxruntime
    except ImportError:
        raise ExportError("ONNX export needs the 'onnx' extra: pip install 'nncompile[onnx]'") from None
    names = list(getattr(module, "nncompile_inputs", {})) or [f"input{i}" for i in range(len(inputs))]
    dynamic = _dynamic_shapes(module, inputs)
    torch.onnx.export(
        _OutputsCopied(module).eval(), inputs, str(path), input_names=names, dynamo=True, verbose=False, dynamic_shapes=(dynamic,)
    )
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 4  # failures are reported by nncompile, not printed by the runtime
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(each):
        feeds = {arg.name: tensor.numpy() for arg, tensor in zip(session.get_inputs(), each)}
        return tuple(torch.from_numpy(out) for out in session.run(None, feeds))

    return run


EXPORTERS: dict[ExportTarget, Callable[[torch.nn.Module, tuple[torch.Tensor, ...], Path], Callable]] = {
    ExportTarget.TORCHSCRIPT: _torchscript,
    ExportTarget.EXPORT: _torch_export,
    ExportTarget.ONNX: _onnx,
}
"""Each target's exporter: it writes the module to a path and returns a function running the file reloaded."""


def _compare(expected, actual, path: Path, inputs: tuple[torch.Tensor, ...]) -> None:
    expected = expected if isinstance(expected, tuple) else (expected,)
    actual = actual if isinstance(actual, (tuple, list)) else (actual,)
    if len(expected) != len(actual):
        raise ExportError(f"{path}: reloaded model returns {len(actual)} outputs, expected {len(expected)}")
    for want, got in zip(expected, actual):
        if want.shape != got.shape or not torch.allclose(want, got, atol=TOLERANCE, rtol=TOLERANCE):
            difference = (want - got).abs().max().item() if want.shape == got.shape else "shape mismatch"
            shapes = ", ".join(str(list(t.shape)) for t in inputs)
            raise ExportError(f"{path}: reloaded outputs differ from the eager model's at inputs {shapes} (max difference {difference})")
