"""`nncompile train SPEC`: check the spec, build it, train it with its train section, keep the run directory."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml
from nncompile.compiler import Analysis, analyze
from nncompile.compiler.commands.common import (
    EXIT_INTERRUPTED,
    EXIT_SPEC_ERRORS,
    Commands,
    add_spec_options,
    parse_overrides,
    print_diagnostics,
    wants_colour,
)
from nncompile.compiler.diagnostics import Diagnostic, UsageError, printable, render_text

LAUNCH_FLAGS = ("nnodes", "node_rank", "rdzv_backend", "rdzv_endpoint", "rdzv_id", "master_addr", "master_port")
"""torchrun's multi-node flags, passed through as given."""


def add_parser(commands: Commands) -> None:
    train = commands.add_parser("train", help="train a spec with its train section; keep a run directory")
    train.add_argument("spec", metavar="SPEC", help="the spec file, with a train section (or give one with --config)")
    train.add_argument("--out", type=Path, help="run directory (default: runs/NAME)")
    train.add_argument("--resume", metavar="CKPT", help="continue from a checkpoint (a run's last.pt)")
    train.add_argument("--device", help="cpu, cuda, cuda:N (default: the train section's, else CUDA when present)")
    train.add_argument("--nproc-per-node", type=int, default=1, metavar="N", help="processes per node, under torchrun (DDP)")
    for flag in LAUNCH_FLAGS:
        train.add_argument(
            f"--{flag.replace('_', '-')}", dest=flag, help=argparse.SUPPRESS if flag.startswith("rdzv_b") else "passed to torchrun"
        )
    add_spec_options(train)
    train.set_defaults(command=run)


def run(args: argparse.Namespace) -> int:

    overrides = parse_overrides(args.set) | ({"train.device": args.device} if args.device else {})
    analysis = analyze(args.spec, overrides, tuple(args.plugin), args.config, args.max_params)
    print_diagnostics(args, analysis.diagnostics, analysis)
    if not analysis.ok:
        return EXIT_SPEC_ERRORS
    document = analysis.document
    if "train" not in document.data:
        hint = "add a train: section (data, optimizer, epochs) or pass --config FILE"
        print(render_text(Diagnostic("E0506", "the spec has no train section", document.span(()), hint), document.text, wants_colour(args)))
        return EXIT_SPEC_ERRORS
    out = args.out or Path("runs") / (analysis.graph.name or Path(args.spec).stem)
    from . import distributed

    flags = {f: getattr(args, f) for f in LAUNCH_FLAGS}
    if distributed.wanted(args.nproc_per_node, flags):
        return distributed.launch(args.nproc_per_node, flags, _child_command(args, out))
    return _train(analysis, overrides, out, args.resume, wants_colour(args))


def _train(analysis: Analysis, overrides: dict[str, Any], out: Path, resume: str | None, colour: bool) -> int:
    import torch
    from nncompile.compiler.emit import emit
    from nncompile.compiler.files import write_atomic

    from . import checkpoint, distributed
    from .config import TrainError, with_defaults
    from .trainer import fit

    document = analysis.document
    config = with_defaults(document.data["train"])
    torch.manual_seed(config["seed"])
    model = emit(analysis.graph, analysis.registry)

    def ready() -> None:  # written once the run can start: a failed resume leaves the directory as it was
        if distributed.is_main_process():
            write_atomic(out / "spec.yaml", _resolved_spec(document.data, overrides, config))

    try:
        state = checkpoint.load(resume) if resume is not None else None
        result = fit(model, config, out, state, ready)
    except TrainError as error:
        span = document.span(("train", *error.path))
        print(render_text(Diagnostic(error.code, error.message, span, error.hint), document.source(span.file), colour))
        return 1
    except checkpoint.CheckpointError as error:
        raise UsageError(f"--resume {resume}: {error}") from None
    if result.out is None:
        return 0
    if result.best is not None:
        print(f"best {result.metric} {result.best:.4f} at epoch {result.best_epoch}")
    print(printable(f"run directory: {out} ({', '.join(result.written)})"))
    return EXIT_INTERRUPTED if result.stopped == "interrupted" else 0


def _resolved_spec(data: dict[str, Any], overrides: dict[str, Any], config: dict[str, Any]) -> str:
    """The spec as trained: parameters with their overrides, the train section merged and defaulted."""
    from nncompile.compiler.overlay import is_train_override

    resolved = dict(data)
    params = {key: value for key, value in overrides.items() if not is_train_override(key)}
    if params:
        resolved["params"] = {**data.get("params", {}), **params}
    resolved["train"] = config
    return "# The spec as `nncompile train` ran it: overrides applied, train defaults filled in.\n" + yaml.safe_dump(
        resolved, sort_keys=False
    )


def _child_command(args: argparse.Namespace, out: Path) -> list[str]:
    """This command for each torchrun process: the same, minus the launcher's flags."""
    command = ["train", args.spec, "--out", str(out)]
    for flag, values in (("--set", args.set), ("--plugin", args.plugin)):
        command += [part for value in values for part in (flag, value)]
    for flag, value in (("--config", args.config), ("--resume", args.resume), ("--device", args.device)):
        if value:
            command += [flag, value]
    return command
