"""Export: TorchScript (.pt), torch.export (.pt2) and ONNX (.onnx), each verified by reloading the
file and comparing its outputs with the eager module's."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

FORMATS = {".pt": "torchscript", ".pt2": "torch.export", ".onnx": "onnx"}
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


def export(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], path: str | Path, kind: str | None = None) -> str:
    """Write `module` to `path` in format `kind` (by default the one its suffix names); verify;
    return the format's name."""
    path = Path(path)
    kind = kind or FORMATS.get(path.suffix)
    if kind is None:
        raise ExportError(f"unknown output format '{path.suffix}': use one of {', '.join(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    with torch.no_grad():
        expected = module(*inputs)
        {"torchscript": _torchscript, "torch.export": _torch_export, "onnx": _onnx}[kind](module, inputs, path, expected)
    return kind


def _torchscript(module, inputs, path, expected) -> None:
    with quiet_torchscript():
        torch.jit.script(module).save(str(path))
        reloaded = torch.jit.load(str(path))
    _compare(expected, reloaded(*inputs), path)


def _torch_export(module, inputs, path, expected) -> None:
    batch = torch.export.Dim("batch", min=1, max=65536)
    dynamic = tuple({0: batch} for _ in inputs)
    program = torch.export.export(module, inputs, dynamic_shapes=dynamic)
    torch.export.save(program, str(path))
    _compare(expected, torch.export.load(str(path)).module()(*inputs), path)


def _onnx(module, inputs, path, expected) -> None:
    try:
        import onnxruntime
    except ImportError:
        raise ExportError("ONNX export needs the 'onnx' extra: pip install 'nncompile[onnx]'") from None
    names = list(getattr(module, "nncompile_inputs", {})) or [f"input{i}" for i in range(len(inputs))]
    batch = torch.export.Dim("batch", min=1, max=65536)
    torch.onnx.export(
        module, inputs, str(path), input_names=names, dynamo=True, verbose=False, dynamic_shapes=tuple({0: batch} for _ in inputs)
    )
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {arg.name: tensor.numpy() for arg, tensor in zip(session.get_inputs(), inputs)}
    _compare(expected, tuple(torch.from_numpy(out) for out in session.run(None, feeds)), path)


def _compare(expected, actual, path: Path) -> None:
    expected = expected if isinstance(expected, tuple) else (expected,)
    actual = actual if isinstance(actual, (tuple, list)) else (actual,)
    if len(expected) != len(actual):
        raise ExportError(f"{path}: reloaded model returns {len(actual)} outputs, expected {len(expected)}")
    for want, got in zip(expected, actual):
        if want.shape != got.shape or not torch.allclose(want, got, atol=TOLERANCE, rtol=TOLERANCE):
            difference = (want - got).abs().max().item() if want.shape == got.shape else "shape mismatch"
            raise ExportError(f"{path}: reloaded outputs differ from the eager model's (max difference {difference})")
