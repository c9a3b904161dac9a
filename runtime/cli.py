"""The `nncompile` command. Each subcommand imports only what it needs: `check`, `summary` and
`schema` never import torch."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import Any

from nncompile.compiler import Analysis, analyze
from nncompile.compiler.diagnostics import Diagnostic, SpecError, UsageError, printable, render_text
from nncompile.compiler.files import OutputError
from nncompile.compiler.infer import MAX_PARAMS
from nncompile.compiler.load import MAX_DEPTH, load_text, read_limited

EXIT_OK, EXIT_SPEC_ERRORS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def version() -> str:
    """The installed package's version (read on demand: importlib.metadata costs an import)."""
    from importlib import metadata

    try:
        return metadata.version("nncompile")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "0+unknown"


class _Version(argparse.Action):
    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        print(f"nncompile {version()}")
        parser.exit()


MAX_SET_LENGTH = 100_000


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.command(args)
    except SpecError as error:  # found while building: a model this machine cannot allocate
        print_diagnostics(error.diagnostics, None)
        return EXIT_SPEC_ERRORS
    except (UsageError, OutputError) as error:  # every line break in a message is escaped: only details start lines
        details = getattr(error, "details", ())
        print("\n".join(printable(line) for line in (f"nncompile: error: {error}", *details)), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `nncompile summary SPEC | head`: the reader has what it wanted
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - silence the interpreter's own flush at exit
        return EXIT_OK
    except Exception:
        print("nncompile: internal error (this is a bug in nncompile, not in your spec; please report it):", file=sys.stderr)
        traceback.print_exc()
        return EXIT_INTERNAL


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nncompile", description="Compile YAML model specs into PyTorch modules.")
    parser.add_argument("--version", action=_Version)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    from .check_command import add_parser as add_check

    add_check(commands, _add_spec_options)

    from .build_command import add_parser as add_build

    add_build(commands, _add_spec_options)

    summary = commands.add_parser(
        "summary", help="a tree of blocks and layers: output shapes, parameters, trainable or frozen, MACs, memory"
    )
    summary.add_argument("spec", metavar="SPEC")
    summary.add_argument("--format", choices=["text", "json", "markdown"], default="text")
    summary.add_argument("--depth", type=int, metavar="N", help="fold blocks deeper than N (1: top-level layers only)")
    summary.add_argument("--batch", type=int, default=1, metavar="N", help="batch size of the memory estimate (default 1)")
    _add_spec_options(summary)
    summary.set_defaults(command=_summary)

    from .train_command import add_parser

    add_parser(commands, _add_spec_options)

    from .graph_command import add_parser as add_graph

    add_graph(commands, _add_spec_options)

    from .diff_command import add_parser as add_diff

    add_diff(commands, _add_spec_options)

    schema = commands.add_parser("schema", help="print the spec language's JSON Schema")
    schema.add_argument("--plugin", action="append", default=[], metavar="MODULE", help="also load the ops of this plugin")
    schema.set_defaults(command=_schema)
    return parser


def _add_spec_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="override a model parameter, or a train setting (train.epochs=3)"
    )
    parser.add_argument("--config", metavar="FILE", help="a YAML file holding a train section, merged over the spec's")
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE", help="load ops from a module or .py file")
    parser.add_argument(
        "--max-params", type=int, default=MAX_PARAMS, metavar="N", help=f"refuse models with more parameters (default {MAX_PARAMS:,})"
    )


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


def print_diagnostics(diagnostics: list[Diagnostic], analysis: Analysis | None, stream: Any = None) -> None:
    """Diagnostics with the source line each points at; each file is read and split once. `stream`
    defaults to stdout; commands whose stdout is data (JSON, Markdown) pass stderr."""
    lines: dict[str, list[str]] = {}
    for diagnostic in diagnostics:
        file = diagnostic.span.file if diagnostic.span else None
        if file is not None and file not in lines:
            lines[file] = source_lines(analysis, file)
        print(render_text(diagnostic, lines.get(file) if file else None), file=stream or sys.stdout)


def _checked(args: argparse.Namespace, stream: Any = None):
    analysis = analyze_spec(args, args.spec)
    print_diagnostics(analysis.diagnostics, analysis, stream)
    return analysis if analysis.ok else None


def _summary(args: argparse.Namespace) -> int:
    from nncompile.compiler.summary import Summary, frozen_layers, summary_json, summary_markdown, summary_text

    if args.depth is not None and args.depth < 1:
        raise UsageError("--depth must be 1 or more")
    if not 1 <= args.batch <= 2**31:
        raise UsageError("--batch must be between 1 and 2**31")
    analysis = _checked(args, sys.stderr if args.format != "text" else None)
    if analysis is None:
        return EXIT_SPEC_ERRORS
    train = analysis.document.data.get("train") if analysis.document else None
    patterns = list(train.get("freeze", [])) if isinstance(train, dict) else []
    summary = Summary(analysis.graph, frozen_layers(analysis.graph, patterns), args.depth, args.batch)
    print({"json": summary_json, "markdown": summary_markdown, "text": summary_text}[args.format](summary).rstrip("\n"))
    return EXIT_OK


def _schema(args: argparse.Namespace) -> int:
    from nncompile.compiler.plugins import registry_with
    from nncompile.compiler.schema import dumps, generate

    sys.stdout.write(dumps(generate(registry_with(tuple(args.plugin)))))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
