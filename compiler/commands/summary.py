"""`nncompile summary SPEC`: a tree of blocks and layers with shapes, parameters, MACs and memory;
torch is never imported."""

from __future__ import annotations

import argparse
import sys

from nncompile.compiler.diagnostics import UsageError

from .common import EXIT_OK, EXIT_SPEC_ERRORS, Commands, add_spec_options, checked_spec


def add_parser(commands: Commands) -> None:
    summary = commands.add_parser(
        "summary", help="a tree of blocks and layers: output shapes, parameters, trainable or frozen, MACs, memory"
    )
    summary.add_argument("spec", metavar="SPEC", help="the spec file")
    summary.add_argument("--format", choices=["text", "json", "markdown"], default="text", help="output format (default text)")
    summary.add_argument("--depth", type=int, metavar="N", help="fold blocks deeper than N (1: top-level layers only)")
    summary.add_argument("--batch", type=int, default=1, metavar="N", help="batch size of the memory estimate (default 1)")
    add_spec_options(summary)
    summary.set_defaults(command=run)


def run(args: argparse.Namespace) -> int:
    from nncompile.compiler.summary import Summary, frozen_layers, summary_json, summary_markdown, summary_text

    if args.depth is not None and args.depth < 1:
        raise UsageError("--depth must be 1 or more")
    if not 1 <= args.batch <= 2**31:
        raise UsageError("--batch must be between 1 and 2**31")
    analysis = checked_spec(args, sys.stderr if args.format != "text" else None)
    if analysis is None:
        return EXIT_SPEC_ERRORS
    train = analysis.document.data.get("train") if analysis.document else None
    patterns = list(train.get("freeze", [])) if isinstance(train, dict) else []
    summary = Summary(analysis.graph, frozen_layers(analysis.graph, patterns), args.depth, args.batch)
    print({"json": summary_json, "markdown": summary_markdown, "text": summary_text}[args.format](summary).rstrip("\n"))
    return EXIT_OK
