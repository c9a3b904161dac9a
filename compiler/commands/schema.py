"""`nncompile schema`: the spec language's JSON Schema, for editors and other validators."""

from __future__ import annotations

import argparse
import sys

from .common import EXIT_OK, Commands


def add_parser(commands: Commands) -> None:
    schema = commands.add_parser("schema", help="print the spec language's JSON Schema")
    schema.add_argument("--plugin", action="append", default=[], metavar="MODULE", help="also load the ops of this plugin")
    schema.set_defaults(command=run)


def run(args: argparse.Namespace) -> int:
    from nncompile.compiler.plugins import registry_with
    from nncompile.compiler.schema import dumps, generate

    sys.stdout.write(dumps(generate(registry_with(tuple(args.plugin)))))
    return EXIT_OK
