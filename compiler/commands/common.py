"""What every command shares: exit codes, the spec options and their `--set` overrides, and printing
diagnostics with their source lines. The commands import this module; it imports none of them."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from nncompile.compiler import Analysis, analyze
from nncompile.compiler.diagnostics import Diagnostic, UsageError, printable, render_text
from nncompile.compiler.infer import MAX_PARAMS
from nncompile.compiler.load import MAX_DEPTH, load_text, read_limited

EXIT_OK, EXIT_SPEC_ERRORS, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_CODES = (
    (EXIT_OK, "success: no errors (warnings may be printed)"),
    (EXIT_SPEC_ERRORS, "the spec has errors (each printed as a located diagnostic), or training failed on them"),
    (EXIT_USAGE, "a usage error: a bad argument, a file that cannot be read or written, a failed export, torch missing"),
    (EXIT_INTERNAL, "an internal error: a bug in nncompile, not in the spec (please report it)"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C); a training run keeps its last checkpoint"),
)
MAX_SET_LENGTH = 100_000

Commands = argparse._SubParsersAction


def version() -> str:
    """The installed package's version (read on demand: importlib.metadata costs an import)."""
    from importlib import metadata

    try:
        return metadata.version("nncompile")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "0+unknown"


def add_spec_options(parser: argparse.ArgumentParser) -> None:
    """The options of every command that reads a spec."""
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="override a model parameter, or a train setting (train.epochs=3)"
    )
    parser.add_argument("--config", metavar="FILE", help="a YAML file holding a train section, merged over the spec's")
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE", help="load ops from a module or .py file")
    parser.add_argument(
        "--max-params", type=int, default=MAX_PARAMS, metavar="N", help=f"refuse models with more parameters (default {MAX_PARAMS:,})"
    )
    parser.add_argument(
        "--color",
        choices=["auto", "always", "never"],
        default="auto",
        help="colour diagnostics: auto (the default) on a terminal unless NO_COLOR is set",
    )


def wants_colour(args: argparse.Namespace, stream: Any = None) -> bool:
    """Whether diagnostics written to `stream` (stdout by default) get ANSI colours: `--color always`,
    or `auto` on a terminal when NO_COLOR (https://no-color.org) is unset or empty and TERM is not dumb."""
    choice = getattr(args, "color", "auto")
    if choice != "auto":
        return choice == "always"
    stream = stream or sys.stdout
    terminal = hasattr(stream, "isatty") and stream.isatty()
    return terminal and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`["num_classes=10", "train.optimizer.lr=1e-3"]` → `{"num_classes": 10, "train.optimizer.lr": 0.001}`.

    Values are read as the spec reads YAML (flow lists and mappings too).
    """
    overrides = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if undecodable(pair):
            raise UsageError(f"--set {printable(name[:80])}: not UTF-8 text (a byte the terminal could not decode)")
        if not sep or not name:
            raise UsageError(f"--set expects NAME=VALUE, got '{printable(pair[:80])}'")
        if name.count(".") >= MAX_DEPTH or len(pair) > MAX_SET_LENGTH:
            raise UsageError(
                f"--set {printable(name[:80])}…: a setting is at most {MAX_DEPTH} keys deep and {MAX_SET_LENGTH} characters long"
            )
        document, diagnostics = load_text(text, "--set") if text.strip() else (None, [])
        if diagnostics:
            raise UsageError(f"--set {name}: cannot read value '{text}': {diagnostics[0].message}")
        overrides[name] = document.data if document else ""
    return overrides


def undecodable(text: str) -> bool:
    """Whether a command-line argument (or a name made from one) held bytes that are not UTF-8: Python
    keeps them as surrogates, which torch's exporters and YAML cannot take."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def analyze_spec(args: argparse.Namespace, spec: str) -> Analysis:
    """The analysis of `spec` under the command's spec options."""
    return analyze(spec, parse_overrides(args.set), tuple(args.plugin), args.config, args.max_params)


def source_lines(analysis: Analysis | None, file: str) -> list[str]:
    """The lines of a file a diagnostic points into: the spec, a --config file, the --set flags, or
    (read anew, within the size limit) another file; none if it cannot be read."""
    source = analysis.document.source(file) if analysis is not None and analysis.document else None
    if source is None:
        try:
            data = read_limited(file)
        except OSError:
            data = None
        source = data.decode("utf-8", errors="replace") if data is not None else ""
    return source.splitlines()


def print_diagnostics(args: argparse.Namespace, diagnostics: list[Diagnostic], analysis: Analysis | None, stream: Any = None) -> None:
    """Diagnostics with the source line each points at; each file is read and split once. `stream`
    defaults to stdout; commands whose stdout is data (JSON, Markdown) pass stderr."""
    stream = stream or sys.stdout
    colour = wants_colour(args, stream)
    lines: dict[str, list[str]] = {}
    for diagnostic in diagnostics:
        file = diagnostic.span.file if diagnostic.span else None
        if file is not None and file not in lines:
            lines[file] = source_lines(analysis, file)
        print(render_text(diagnostic, lines.get(file) if file else None, colour), file=stream)


def checked_spec(args: argparse.Namespace, stream: Any = None) -> Analysis | None:
    """The analysis of `args.spec` with its diagnostics printed, or None when it has errors."""
    analysis = analyze_spec(args, args.spec)
    print_diagnostics(args, analysis.diagnostics, analysis, stream)
    return analysis if analysis.ok else None
