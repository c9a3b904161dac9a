"""`nncompile build SPEC`: compile a spec and export it (.pt TorchScript, .pt2 torch.export, .onnx), with
trained weights (`--weights`), or eject it as a standalone PyTorch file (`--emit python`, or `-o x.py`)."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from nncompile.compiler import analyze
from nncompile.compiler.diagnostics import UsageError, did_you_mean, printable
from nncompile.compiler.files import check_writable, write_atomic


def add_parser(commands: argparse._SubParsersAction, add_spec_options: Callable[[argparse.ArgumentParser], None]) -> None:
    build = commands.add_parser("build", help="compile a spec and export it (.pt, .pt2, .onnx) or eject it as PyTorch source (.py)")
    build.add_argument("spec", metavar="SPEC")
    build.add_argument("-o", "--output", type=Path, help="output file; the suffix picks the format (default: build/NAME.pt)")
    build.add_argument("--emit", choices=["model", "python"], default=None, help="python: write the model as a standalone PyTorch module")
    build.add_argument("--weights", metavar="FILE", help="load these weights first: a state_dict file or a checkpoint of nncompile train")
    add_spec_options(build)
    build.set_defaults(command=run)


def run(args: argparse.Namespace) -> int:
    from .cli import EXIT_OK, EXIT_SPEC_ERRORS, analyze_spec, print_diagnostics

    output, python = _output(args)
    analysis = analyze_spec(args, args.spec)
    print_diagnostics(analysis.diagnostics, analysis)
    if not analysis.ok:
        return EXIT_SPEC_ERRORS
    if python:
        return _eject(args, analysis, output)
    from nncompile.compiler.emit import emit, example_inputs
    from nncompile.compiler.export import ExportError, export
    from nncompile.compiler.targets import SUFFIXES, export_limits

    limits = export_limits(analysis.graph, SUFFIXES[output.suffix])
    if limits:  # known not to export: say where, before trying
        print_diagnostics(limits, analysis)
        return EXIT_SPEC_ERRORS
    module = emit(analysis.graph, analysis.registry)
    if args.weights:
        load_weights(module, args.weights)
    try:
        kind = export(module, example_inputs(module), output)
    except ExportError as error:
        raise UsageError(str(error)) from None
    weights = f" with the weights of {args.weights}" if args.weights else ""
    print(printable(f"wrote {output} ({kind}{weights}; reloaded and verified against the eager model)"))
    return EXIT_OK


def _output(args: argparse.Namespace) -> tuple[Path, bool]:
    """The file to write and whether it is ejected Python, refused before any work where it cannot be
    written: a directory, a path under a file, an unknown format, a name torch's exporters cannot take."""
    from nncompile.compiler.targets import SUFFIXES

    from .cli import undecodable

    python = args.emit == "python" or (args.emit is None and args.output is not None and args.output.suffix == ".py")
    output = args.output or Path("build") / f"{Path(args.spec).stem}{'.py' if python else '.pt'}"
    check_writable(output)
    if not python and output.suffix not in SUFFIXES:
        raise UsageError(f"unknown output format '{printable(output.suffix)}': use one of {', '.join(SUFFIXES)}, or .py to eject")
    if not python and undecodable(str(output.absolute())):
        raise UsageError(f"{printable(str(output))}: torch's exporters take only UTF-8 file names; give another with -o")
    return output, python


def _eject(args: argparse.Namespace, analysis, output: Path) -> int:
    from nncompile.compiler.eject import EjectError, eject

    from .cli import EXIT_OK

    if args.weights:
        raise UsageError("--weights goes with .pt, .pt2 and .onnx; the ejected module loads a state_dict itself (load_state_dict)")
    command = (
        shlex.join(["nncompile", "build", *sys.argv[2:]]) if sys.argv[1:2] == ["build"] else f"nncompile build {args.spec} --emit python"
    )
    from nncompile.compiler.params import model_values

    from .cli import parse_overrides

    overrides = {k: v for k, v in parse_overrides(args.set).items() if not k.startswith("train.")}
    params = model_values(analysis.document, overrides)[0].params

    def variant(changed):
        other = analyze(args.spec, overrides | dict(changed), tuple(args.plugin), args.config, args.max_params)
        return other.graph if other.ok else None

    try:
        text = eject(analysis.graph, analysis.registry, analysis.document, command, params, variant)
    except EjectError as error:
        raise UsageError(f"{args.spec}: cannot eject: {error}") from None
    write_atomic(output, text)
    print(printable(f"wrote {output} (plain PyTorch; its state_dict keys are the compiled model's)"))
    return EXIT_OK


def load_weights(module, path: str) -> None:
    """Load a state_dict or a training checkpoint into `module`, strictly: every mismatch is listed."""
    from .checkpoint import CheckpointError, state_dict_of

    try:
        weights = state_dict_of(path)
    except CheckpointError as error:
        raise UsageError(str(error)) from None
    own = module.state_dict()
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    reshaped = [
        f"{k}: the file has {list(weights[k].shape)}, the model {list(own[k].shape)}"
        for k in own
        if k in weights and weights[k].shape != own[k].shape
    ]
    if missing or unexpected or reshaped:
        lines = [f"  missing: {k}" for k in missing]
        for key in unexpected:
            hint = _renamed(key, weights, own, missing)
            lines.append(f"  unexpected: {key}" + (f" ({hint})" if hint else ""))
        lines += [f"  wrong shape: {text}" for text in reshaped]
        raise UsageError(f"{path} does not fit the model:", lines)
    module.load_state_dict(weights, strict=True)


def _renamed(key: str, weights: dict, own: dict, missing: list[str]) -> str | None:
    """A missing key this one may be the old name of: the one of the same kind (`.weight`) and shape,
    or else the nearest in spelling."""
    kind = key.rpartition(".")[2]
    alike = [k for k in missing if k.rpartition(".")[2] == kind and own[k].shape == weights[key].shape]
    return f"did you mean '{alike[0]}'? (same shape)" if len(alike) == 1 else did_you_mean(key, missing)
