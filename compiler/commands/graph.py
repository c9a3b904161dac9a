"""`nncompile graph SPEC -o model.svg|.html|.dot|.mmd`: a picture of the model; torch is never imported."""

from __future__ import annotations

import argparse
from pathlib import Path

from nncompile.compiler.diagnostics import UsageError, printable
from nncompile.compiler.files import check_writable, write_atomic

from .common import EXIT_OK, EXIT_SPEC_ERRORS, Commands, add_spec_options, analyze_spec, print_diagnostics


def add_parser(commands: Commands) -> None:
    graph = commands.add_parser("graph", help="draw the model: SVG, an HTML page with pan/zoom, Graphviz DOT or Mermaid")
    graph.add_argument("spec", metavar="SPEC", help="the spec file")
    graph.add_argument(
        "-o", "--output", type=Path, help="output file: .svg, .html, .dot or .mmd (default: build/NAME.svg; - prints Mermaid)"
    )
    add_spec_options(graph)
    graph.set_defaults(command=run)


def run(args: argparse.Namespace) -> int:
    from nncompile.compiler.picture import WRITERS, picture, to_dot, to_html, to_mermaid, to_svg

    output = args.output or Path("build") / f"{Path(args.spec).stem}.svg"
    kind = "mermaid" if str(output) == "-" else WRITERS.get(output.suffix)
    if kind is None:
        raise UsageError(f"unknown picture format '{output.suffix}': use one of {', '.join(sorted(WRITERS))}")
    if str(output) != "-":
        check_writable(output)  # a directory, or a path under a file: refused before any work
    analysis = analyze_spec(args, args.spec)
    print_diagnostics(args, analysis.diagnostics, analysis)
    if not analysis.ok:
        return EXIT_SPEC_ERRORS
    pic = picture(analysis.graph)
    if kind == "html":
        text = to_html(pic, analysis.document.text, args.spec)
    else:
        text = {"dot": to_dot, "mermaid": to_mermaid, "svg": to_svg}[kind](pic)
    if str(output) == "-":
        print(text, end="")
        return EXIT_OK
    write_atomic(output, text)
    print(printable(f"wrote {output} ({kind}, {len(pic.boxes)} nodes, {len(pic.edges)} edges)"))
    return EXIT_OK
