"""The `nncompile` command: a thin dispatcher over the compiler's commands and the runtime's `train`.
Each command module imports only what it needs at run time: `check`, `summary`, `graph`, `diff` and
`schema` never import torch."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from nncompile.compiler.commands import build, check, diff, graph, schema, summary
from nncompile.compiler.commands.common import (
    EXIT_CODES,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SPEC_ERRORS,
    EXIT_USAGE,
    print_diagnostics,
    version,
)
from nncompile.compiler.diagnostics import SpecError, UsageError, printable
from nncompile.compiler.files import OutputError
from nncompile.runtime import train_command

COMMANDS = (check, build, summary, train_command, graph, diff, schema)
TORCH_MODULES = ("torch", "torchvision")
MISSING_TORCH = (
    "this command needs PyTorch, and {module} is not installed: pip install 'nncompile[torch]' "
    "(check, summary, graph, diff and schema work without it)"
)


class _Version(argparse.Action):
    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        print(f"nncompile {version()}")
        parser.exit()


def main(argv: list[str] | None = None) -> int:
    """Run one `nncompile` command line; returns its exit status (one of EXIT_CODES)."""
    args = parser().parse_args(argv)
    try:
        return args.command(args)
    except SpecError as error:  # found while building: a model this machine cannot allocate
        print_diagnostics(args, error.diagnostics, None)
        return EXIT_SPEC_ERRORS
    except (UsageError, OutputError) as error:  # every line break in a message is escaped: only details start lines
        details = getattr(error, "details", ())
        print("\n".join(printable(line) for line in (f"nncompile: error: {error}", *details)), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `nncompile summary SPEC | head`: the reader has what it wanted
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - silence the interpreter's own flush at exit
        return EXIT_OK
    except Exception as error:
        if isinstance(error, ModuleNotFoundError) and (error.name or "").partition(".")[0] in TORCH_MODULES:
            print(f"nncompile: error: {MISSING_TORCH.format(module=error.name)}", file=sys.stderr)
            return EXIT_USAGE
        import traceback

        print("nncompile: internal error (this is a bug in nncompile, not in your spec; please report it):", file=sys.stderr)
        traceback.print_exc()
        return EXIT_INTERNAL


def parser() -> argparse.ArgumentParser:
    """The argument parser of every command, with the exit codes in its epilog."""
    epilog = "exit status:\n" + "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES)
    top = argparse.ArgumentParser(
        prog="nncompile",
        description="Compile YAML model specs into PyTorch modules.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--version", action=_Version)
    commands = top.add_subparsers(required=True, metavar="COMMAND", help="one of these; `nncompile COMMAND --help` for its options")
    for command in COMMANDS:
        command.add_parser(commands)
    for sub in commands.choices.values():
        sub.epilog, sub.formatter_class = epilog, argparse.RawDescriptionHelpFormatter
    return top


if __name__ == "__main__":
    sys.exit(main())
