"""`nncompile build SPEC`: compile a spec and export it (.pt TorchScript, .pt2 torch.export, .onnx), with
trained weights (`--weights`), or eject it as a standalone PyTorch file (`--emit python`, or `-o x.py`)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from nncompile.compiler import analyze
from nncompile.compiler.diagnostics import UsageError, printable
from nncompile.compiler.files import check_writable, write_atomic

from .common import EXIT_OK, EXIT_SPEC_ERRORS, Commands, add_spec_options, analyze_spec, parse_overrides, print_diagnostics, undecodable


def add_parser(commands: Commands) -> None:
    build = commands.add_parser("build", help="compile a spec and export it (.pt, .pt2, .onnx) or eject it as PyTorch source (.py)")
    build.add_argument("spec", metavar="SPEC", help="the spec file")
    build.add_argument("-o", "--output", type=Path, help="output file; the suffix picks the format (default: build/NAME.pt)")
    build.add_argument("--emit", choices=["model", "python"], default=None, help="python: write the model as a standalone PyTorch module")
    build.add_argument("--weights", metavar="FILE", help="load these weights first: a state_dict file or a checkpoint of nncompile train")
    add_spec_options(build)
    build.set_defaults(command=run)


def run(args: argparse.Namespace) -> int:

    output, python = _output(args)
    analysis = analyze_spec(args, args.spec)
    print_diagnostics(args, analysis.diagnostics, analysis)
    if not analysis.ok:
        return EXIT_SPEC_ERRORS
    if python:
        return _eject(args, analysis, output)
    from nncompile.compiler.emit import emit, example_inputs
    from nncompile.compiler.export import ExportError, export
    from nncompile.compiler.export_limits import export_limits
    from nncompile.compiler.targets import SUFFIXES
    from nncompile.compiler.weights import load_weights

    limits = export_limits(analysis.graph, SUFFIXES[output.suffix], analysis.registry)
    if limits:  # known not to export: say where, before trying
        print_diagnostics(args, limits, analysis)
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

    if args.weights:
        raise UsageError("--weights goes with .pt, .pt2 and .onnx; the ejected module loads a state_dict itself (load_state_dict)")
    command = (
        shlex.join(["nncompile", "build", *sys.argv[2:]]) if sys.argv[1:2] == ["build"] else f"nncompile build {args.spec} --emit python"
    )
    from nncompile.compiler.params import model_values

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
