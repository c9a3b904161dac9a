"""`nncompile diff OLD NEW`: per-layer and total changes between two specs, or two git revisions of
one (`HEAD~1:specs/resnet18.yaml`), as text or JSON; torch is never imported."""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from nncompile.compiler.diagnostics import UsageError, printable, render_text
from nncompile.compiler.load import MAX_BYTES

from .common import EXIT_OK, EXIT_SPEC_ERRORS, Commands, add_spec_options, analyze_spec, source_lines, wants_colour


def add_parser(commands: Commands) -> None:
    diff = commands.add_parser("diff", help="per-layer changes in shapes, parameters and MACs between two specs")
    diff.add_argument("old", metavar="OLD", help="a spec file, or REV:PATH for a git revision of one")
    diff.add_argument("new", metavar="NEW", help="a spec file, or REV:PATH")
    diff.add_argument("--format", choices=["text", "json"], default="text", help="output format (default text)")
    add_spec_options(diff)
    diff.set_defaults(command=run)


def run(args: argparse.Namespace) -> int:
    from nncompile.compiler.diff import diff, diff_text

    analyses = []
    with tempfile.TemporaryDirectory() as folder:
        for side, spec in (("old", args.old), ("new", args.new)):
            path = _local(spec, Path(folder) / f"{side}.yaml")
            analysis = analyze_spec(args, path)
            stream = sys.stderr if args.format == "json" else sys.stdout
            _print(analysis, path, spec, stream, wants_colour(args, stream))
            analyses.append(analysis)
    if not all(analysis.ok for analysis in analyses):
        return EXIT_SPEC_ERRORS
    result = diff(analyses[0].graph, analyses[1].graph)
    print(json.dumps(result, indent=2) if args.format == "json" else diff_text(result))
    return EXIT_OK


def _print(analysis, path: str, label: str, stream, colour: bool) -> None:
    """The diagnostics of one side, naming a git revision as the user wrote it (not its scratch file)."""

    for diagnostic in analysis.diagnostics:
        span = diagnostic.span
        lines = source_lines(analysis, span.file) if span else None
        if span and span.file == path:
            diagnostic = dataclasses.replace(diagnostic, span=dataclasses.replace(span, file=label))
        print(render_text(diagnostic, lines, colour), file=stream)


def _local(spec: str, scratch: Path) -> str:
    """`spec` itself if it is a file; a `REV:PATH` is read from git into `scratch`."""
    if Path(spec).exists() or ":" not in spec:
        return spec
    size = _git(["cat-file", "-s", spec], spec)
    if int(size or 0) > MAX_BYTES:
        raise UsageError(f"{printable(spec)}: over {MAX_BYTES // 2**20} MiB; not read")
    scratch.write_bytes(_git(["show", spec], spec, text=False))
    return str(scratch)


def _git(arguments: list[str], spec: str, text: bool = True):
    try:
        result = subprocess.run(["git", *arguments], capture_output=True, text=text, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise UsageError(f"{printable(spec)}: cannot run git: {error}") from None
    if result.returncode != 0:
        message = result.stderr if text else result.stderr.decode("utf-8", "replace")
        raise UsageError(f"{printable(spec)}: not a file, and git cannot read it ({printable(message.strip()[:200])})")
    return result.stdout
