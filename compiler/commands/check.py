"""`nncompile check SPEC...`: every diagnostic of every spec, in the format a person or a CI tool reads;
torch is never imported. Files are checked in parallel with `-j N`; the report keeps their order."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from nncompile.compiler.diagnostics import Diagnostic, UsageError, printable, render_text, sort_key
from nncompile.compiler.export_limits import export_limits
from nncompile.compiler.targets import TARGETS

from .common import EXIT_OK, EXIT_SPEC_ERRORS, EXIT_USAGE, Commands, add_spec_options, analyze_spec, source_lines, version, wants_colour

FORMATS = ("text", "json", "github", "sarif")
SPEC_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Checked:
    """One spec's diagnostics and the lines of the files they point into, or why it was not checked."""

    spec: str
    diagnostics: tuple[Diagnostic, ...] = ()
    sources: tuple[tuple[str, tuple[str, ...]], ...] = ()
    unusable: str | None = None


def add_parser(commands: Commands) -> None:
    check = commands.add_parser("check", help="validate specs and infer every shape (no torch import)")
    check.add_argument(
        "specs", nargs="+", metavar="SPEC", help="spec files; a directory means every .yaml/.yml file under it; - reads standard input"
    )
    check.add_argument("--format", choices=FORMATS, default="text", help="diagnostic format (default text)")
    check.add_argument("--select", action="append", default=[], metavar="CODES", help="report only these codes or prefixes (E03,W0301)")
    check.add_argument("--ignore", action="append", default=[], metavar="CODES", help="do not report these codes or prefixes")
    check.add_argument(
        "--target",
        action="append",
        default=[],
        choices=TARGETS,
        help=f"also flag layers that would not export to this format ({', '.join(TARGETS)})",
    )
    check.add_argument("-j", "--jobs", type=int, default=1, metavar="N", help="check N files at a time (0: one per CPU)")
    add_spec_options(check)
    check.set_defaults(command=run)


def run(args: argparse.Namespace) -> int:

    keep = _selector(args.select, args.ignore)
    results = _check_all(args)
    diagnostics = [d for result in results for d in result.diagnostics if keep(d.code)]
    for result in results:
        if result.unusable:
            print(f"nncompile: error: {printable(result.unusable)}", file=sys.stderr)
        elif args.format in ("text", "github"):
            _print(result, keep, args.format, wants_colour(args))
    if args.format == "json":
        from nncompile.compiler.report import render_json

        print(render_json(diagnostics))
    elif args.format == "sarif":
        from nncompile.compiler.report import render_sarif

        print(render_sarif(diagnostics, version()))
    unusable = sum(1 for result in results if result.unusable)
    errors = sum(d.is_error for d in diagnostics)
    skipped = f", {unusable} not checked" if unusable else ""
    print(f"checked {len(results) - unusable} spec(s){skipped}: {errors} error(s), {len(diagnostics) - errors} warning(s)", file=sys.stderr)
    return EXIT_USAGE if unusable else EXIT_SPEC_ERRORS if errors else EXIT_OK


def _selector(select: list[str], ignore: list[str]) -> Callable[[str], bool]:
    """Codes given as comma-separated codes or prefixes; --ignore wins over --select."""
    chosen = [code.strip() for value in select for code in value.split(",") if code.strip()]
    dropped = [code.strip() for value in ignore for code in value.split(",") if code.strip()]
    return lambda code: (not chosen or code.startswith(tuple(chosen))) and not code.startswith(tuple(dropped))


def spec_files(paths: list[str]) -> list[str]:
    """The specs named: a file as given, a directory as every `.yaml`/`.yml` file under it (sorted;
    hidden files and directories skipped, links to directories not entered), `-` as standard input."""
    found: list[str] = []
    for path in paths:
        if path == "-" or not os.path.isdir(path):
            found.append(path)
            continue
        inside = []
        for folder, subfolders, files in os.walk(path):
            subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
            inside += [os.path.join(folder, name) for name in sorted(files) if name.endswith(SPEC_SUFFIXES) and not name.startswith(".")]
        if not inside:
            raise UsageError(f"{printable(path)}: a directory with no spec in it (no {' or '.join(SPEC_SUFFIXES)} file)")
        found += inside
    return found


def _check_all(args: argparse.Namespace) -> list[Checked]:
    specs = spec_files(args.specs)
    jobs = (os.cpu_count() or 1) if args.jobs == 0 else max(1, args.jobs)
    if jobs == 1 or len(specs) == 1 or "-" in specs:  # standard input is read in this process
        return [_check_one(args, spec) for spec in specs]
    from concurrent.futures import ProcessPoolExecutor  # imported only here: it costs the one-file check 5 ms

    with ProcessPoolExecutor(min(jobs, len(specs))) as pool:
        return list(pool.map(_check_one, [args] * len(specs), specs))


def _check_one(args: argparse.Namespace, spec: str) -> Checked:

    try:
        analysis = analyze_spec(args, spec)
    except UsageError as error:
        return Checked(spec, unusable=str(error))
    diagnostics = list(analysis.diagnostics)
    if analysis.graph is not None:
        limits = [d for target in args.target for d in export_limits(analysis.graph, target, analysis.registry)]
        diagnostics = sorted(diagnostics + limits, key=sort_key)
    files = {d.span.file for d in diagnostics if d.span}
    return Checked(spec, tuple(diagnostics), tuple((file, tuple(source_lines(analysis, file))) for file in sorted(files)))


def _print(result: Checked, keep: Callable[[str], bool], fmt: str, colour: bool) -> None:
    sources = dict(result.sources)
    for diagnostic in result.diagnostics:
        if not keep(diagnostic.code):
            continue
        if fmt == "github":
            from nncompile.compiler.report import render_github

            print(render_github(diagnostic))
        else:
            print(render_text(diagnostic, sources.get(diagnostic.span.file) if diagnostic.span else None, colour))
