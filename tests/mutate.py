"""Mutants of the shipped specs, and what nncompile must do with each: `check` ends in exit 0 or 1 with
located diagnostics only, in bounded time, and a mutant `check` passes builds and runs.

Mutations: keys deleted or duplicated, values retyped, numbers made negative or huge, references
swapped, layers duplicated or swapped, lines dropped or duplicated, bytes flipped, the text truncated.
`fuzz_one` runs one mutant in this process; `benchmarks/fuzz.py` runs many in a child process with a
memory limit.
"""

from __future__ import annotations

import contextlib
import copy
import io
import random
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").rglob("*.yaml"))
ODD_VALUES: tuple[Any, ...] = (
    "x",
    "",
    [1],
    {"a": 1},
    None,
    True,
    3.5,
    -1,
    0,
    2**31,
    2**62,
    10**18,
    "$nope",
    "$1 / 0",
    "$2 ** 200",
    "${",
    "conv1",
    "layer1.0.*",
    "1e400",
    "\x1b[31m",
)
MAX_MACS_RUN = 200_000_000
"""Mutants over this many MACs per sample are built but not run (the run's time, not its success, grows)."""


@dataclass
class Outcome:
    """What one mutant did: the check's exit status, whether it was built and run, and any failure."""

    status: int
    built: bool = False
    ran: bool = False
    failure: str | None = None


def mutate(text: str, rng: random.Random) -> str:
    """One mutant of a spec's text (one to three mutations)."""
    for _ in range(rng.randint(1, 3)):
        text = rng.choice(_MUTATIONS)(text, rng)
    return text


def _data_mutation(change):
    def mutation(text: str, rng: random.Random) -> str:
        try:
            data = yaml.safe_load(text)
        except (yaml.YAMLError, UnicodeError, RecursionError):
            return text
        if not isinstance(data, (dict, list)):
            return text
        data = copy.deepcopy(data)
        spots = list(_spots(data))
        if spots:
            change(data, spots, rng)
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=rng.random() < 0.3)

    return mutation


def _spots(node: Any, depth: int = 0):
    """(container, key) of every value in the data."""
    if depth > 40:
        return
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in list(items):
        yield node, key
        yield from _spots(value, depth + 1)


def _delete(data, spots, rng):
    container, key = rng.choice(spots)
    del container[key]


def _retype(data, spots, rng):
    container, key = rng.choice(spots)
    container[key] = copy.deepcopy(rng.choice(ODD_VALUES))


def _renumber(data, spots, rng):
    numbers = [(c, k) for c, k in spots if isinstance(c[k], (int, float)) and not isinstance(c[k], bool)]
    if numbers:
        container, key = rng.choice(numbers)
        value = container[key]
        container[key] = rng.choice([-value, value * 1_000_000, 2**31 - 1, 2**63 - 1, value + 1, 0, value / 3])


def _swap_reference(data, spots, rng):
    names = [c[k] for c, k in spots if k == "id" and isinstance(c[k], str)] or ["x"]
    refs = [(c, k) for c, k in spots if k in ("from", "output", "outputs")]
    if refs:
        container, key = rng.choice(refs)
        container[key] = rng.choice([rng.choice(names), [rng.choice(names), rng.choice(names)], "nowhere", 99, "x.7"])


def _duplicate_item(data, spots, rng):
    lists = [c[k] for c, k in spots if isinstance(c[k], list) and c[k]]
    if lists:
        chosen = rng.choice(lists)
        chosen.insert(rng.randrange(len(chosen) + 1), copy.deepcopy(rng.choice(chosen)))


def _swap_items(data, spots, rng):
    lists = [c[k] for c, k in spots if isinstance(c[k], list) and len(c[k]) > 1]
    if lists:
        chosen = rng.choice(lists)
        i, j = rng.sample(range(len(chosen)), 2)
        chosen[i], chosen[j] = chosen[j], chosen[i]


def _drop_line(text: str, rng: random.Random) -> str:
    lines = text.splitlines(keepends=True)
    if lines:
        del lines[rng.randrange(len(lines))]
    return "".join(lines)


def _duplicate_line(text: str, rng: random.Random) -> str:
    """Often a duplicated key."""
    lines = text.splitlines(keepends=True)
    if lines:
        index = rng.randrange(len(lines))
        lines.insert(index, lines[index])
    return "".join(lines)


def _flip_byte(text: str, rng: random.Random) -> str:
    data = bytearray(text.encode("utf-8", "surrogateescape"))
    if data:
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return data.decode("utf-8", errors="surrogateescape")


def _truncate(text: str, rng: random.Random) -> str:
    return text[: rng.randrange(len(text) + 1)]


_MUTATIONS = (
    _data_mutation(_delete),
    _data_mutation(_retype),
    _data_mutation(_renumber),
    _data_mutation(_renumber),
    _data_mutation(_swap_reference),
    _data_mutation(_duplicate_item),
    _data_mutation(_swap_items),
    _drop_line,
    _duplicate_line,
    _flip_byte,
    _truncate,
)


class Hang(BaseException):
    """Raised by SIGALRM. A BaseException, so the CLI's `except Exception` cannot swallow it."""


@contextlib.contextmanager
def deadline(seconds: int):
    """Raise Hang if the block runs longer than `seconds` (main thread; no-op without SIGALRM)."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def expired(*_: Any) -> None:
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def mutant(seed: int) -> tuple[Path, str]:
    """The spec a seed mutates and the mutant's text."""
    rng = random.Random(seed)
    source = rng.choice(SPECS)
    return source, mutate(source.read_text(), rng)


def fuzz_one(path: Path, seconds: int = 120) -> Outcome:
    """Check the spec at `path` as the CLI does; build and run it if the check passes. A step over
    `seconds` counts as a hang (generous: a hang detector, not a speed test)."""
    from runtime.cli import main

    output = io.StringIO()
    try:
        with deadline(seconds), contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            status = main(["check", str(path)])
    except Hang as hang:
        return Outcome(-1, failure=f"check hung: {hang}")
    text = output.getvalue()
    if status not in (0, 1) or "Traceback" in text or "internal error" in text:
        return Outcome(status, failure=f"check ended with {status}:\n{text[-3000:]}")
    if status == 1:
        return Outcome(status)
    return _build_and_run(path, seconds)


def _build_and_run(path: Path, seconds: int) -> Outcome:
    import torch

    import compiler
    from compiler import costs
    from compiler.emit import emit, example_inputs

    try:
        with deadline(seconds):
            analysis = compiler.analyze(path, max_params=20_000_000)
            if not analysis.ok:  # over this harness's parameter limit: refused before allocation, as it should be
                return Outcome(0)
            model = emit(analysis.graph, analysis.registry).eval()
            if costs.macs(analysis.graph) > MAX_MACS_RUN or costs.activation_bytes(analysis.graph, 1) > 2**29:
                return Outcome(0, built=True)
            with torch.no_grad():
                model(*example_inputs(model, batch=1))
            return Outcome(0, built=True, ran=True)
    except Hang as hang:
        return Outcome(0, failure=f"build hung: {hang}")
    except Exception as error:  # check said clean: any failure here is a bug
        return Outcome(0, failure=f"check passed but build or run failed: {type(error).__name__}: {error}"[:3000])
