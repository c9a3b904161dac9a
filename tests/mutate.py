"""Mutants of the shipped specs, and what nncompile must do with each: `check` ends in exit 0 or 1 with
located diagnostics only, in bounded time, and a mutant `check` passes builds and runs.

Mutations: keys deleted or duplicated, values retyped, numbers made negative or huge, references
swapped, layers duplicated or swapped, lines dropped or duplicated, bytes flipped, the text truncated;
and hostile ones: numbers made floats inside powers (`$(w + 0.5) ** 2`), values replaced by huge
lists, by lists doubled through a function or a chain of parameters, by fan-out recursion or a list
holding one list many times, ids made special names (`__class__`), sizes and parameters made absurd
(65,536 tokens, 2**20 channels), parameters (variant selectors among them) given lists, budgets given
400-digit numbers. `fuzz_one` runs one mutant in this process; `run_mutants` runs many in a child
process with a memory limit (the CI sample and `benchmarks/fuzz.py`).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import json
import random
import signal
import subprocess
import sys
from collections.abc import Iterable
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
    "1" + "0" * 400 + "G",
    [[1, 2]] * 3,
)
MAX_MACS_RUN = 200_000_000
"""Mutants over this many MACs per sample are built but not run (the run's time, not its success, grows)."""


@dataclasses.dataclass
class Outcome:
    """What one mutant did: the check's exit status, whether it was built and run, and any failure."""

    status: int
    built: bool = False
    ran: bool = False
    failure: str | None = None
    refused: bool = False
    """Build refused it with located E0407 (more memory than this process may allocate), as `build` does."""


def mutate(text: str, rng: random.Random) -> str:
    """One mutant of a spec's text (one to three mutations)."""
    for _ in range(rng.randint(1, 3)):
        text = rng.choice(_MUTATIONS)(text, rng)
    return text


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
"""libyaml's safe loader and dumper where PyYAML has them: a mutant holding a 250,000-element list is
read and written in a second, not forty."""


def _data_mutation(change):
    def mutation(text: str, rng: random.Random) -> str:
        try:
            data = yaml.load(text, Loader=_LOADER)
        except (yaml.YAMLError, UnicodeError, RecursionError):
            return text
        if not isinstance(data, (dict, list)):
            return text
        data = copy.deepcopy(data)
        spots = list(_spots(data))
        if spots:
            change(data, spots, rng)
        return yaml.dump(data, Dumper=_DUMPER, sort_keys=False, default_flow_style=rng.random() < 0.3)

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


HOSTILE_FUNCTIONS = {
    "nn_grow": {"args": ["items", "n"], "value": "$nn_grow($items + $items, $n - 1) if $n > 0 else $items"},
    "nn_nest": {"args": ["items", "n"], "value": "$nn_nest([$items, $items], $n - 1) if $n > 0 else $items"},
    "nn_fan": {"args": ["n"], "value": "$nn_fan($n - 1) + $nn_fan($n - 1) + $nn_fan($n - 1) if $n > 0 else 1"},
}
"""Functions a hostile mutant adds: a list doubled per call, a list holding one list twice per call, three calls per call."""
HOSTILE_CALLS = ("$len($nn_grow([1], 30))", "$nn_grow([1], 12)", "$nn_nest([1], 25)", "$nn_fan(30)", "$nn_fan(3)")
ABSURD = (65_536, 2**20, 10**6, 50_000, 2**31 - 1)
DUNDERS = ("__class__", "__init__", "__dict__", "__getattr__", "__module__", "__call__", "training", "forward")


def _numbers(spots) -> list:
    return [(c, k) for c, k in spots if isinstance(c[k], (int, float)) and not isinstance(c[k], bool)]


def _float_power(data, spots, rng):
    """A number or an expression raised to a power with a float in it (a float base once crashed `**`)."""
    candidates = _numbers(spots) + [(c, k) for c, k in spots if isinstance(c[k], str) and c[k].startswith("$")]
    if candidates:
        container, key = rng.choice(candidates)
        value = container[key]
        inner = value[1:] if isinstance(value, str) else repr(value)
        form = rng.choice(["$({}) ** 2", "$int(({}) * 1.0) ** 1", "$int((({}) + 0.5) ** 2)", "$(({}) * 1.5) ** 400", "$({}) ** 0.5"])
        container[key] = form.format(inner)


def _float_param(data, spots, rng):
    """A model parameter made a float (so `$p ** 2`, `$p // 2` and friends meet one)."""
    params = data.get("params") if isinstance(data, dict) else None
    numbers = [k for k, v in params.items() if isinstance(v, int) and not isinstance(v, bool)] if isinstance(params, dict) else []
    if numbers:
        key = rng.choice(numbers)
        params[key] = rng.choice([params[key] + 0.5, float(params[key]), params[key] * 1.5])


def _huge_list(data, spots, rng):
    container, key = rng.choice(spots)
    container[key] = [rng.choice([1, 0, 3])] * rng.choice([1_000, 50_000, 250_000])


def _hostile_call(data, spots, rng):
    """A value replaced by a call of a hostile function (added to the spec's functions)."""
    if not isinstance(data, dict):
        return
    functions = data.get("functions") if isinstance(data.get("functions"), dict) else {}
    data["functions"] = {**functions, **copy.deepcopy(HOSTILE_FUNCTIONS)}
    container, key = rng.choice(spots)
    container[key] = rng.choice(HOSTILE_CALLS)


def _doubling_params(data, spots, rng):
    """A chain of parameters each doubling the one before, the last one used for a value."""
    if not isinstance(data, dict):
        return
    params = data.get("params") if isinstance(data.get("params"), dict) else {}
    chain = {"nn_d0": [1, 2], **{f"nn_d{i}": f"$nn_d{i - 1} + $nn_d{i - 1}" for i in range(1, 25)}}
    data["params"] = {**params, **chain}
    container, key = rng.choice(spots)
    container[key] = rng.choice(["$nn_d24", "$len($nn_d24)"])


def _dunder_id(data, spots, rng):
    ids = [(c, k) for c, k in spots if k == "id"]
    if ids:
        container, key = rng.choice(ids)
        container[key] = rng.choice(DUNDERS)


def _absurd_size(data, spots, rng):
    """A parameter, size bound or input dimension (or any number) made absurd: builds that would
    allocate hundreds of GB."""
    if not isinstance(data, dict):
        return
    sections = [data.get(name) for name in ("params", "sizes", "inputs")]
    favoured = [(c, k) for section in sections if isinstance(section, (dict, list)) for c, k in _numbers(_spots(section))]
    candidates = favoured if favoured and rng.random() < 0.7 else _numbers(spots)
    if candidates:
        container, key = rng.choice(candidates)
        container[key] = rng.choice(ABSURD)


def _list_param(data, spots, rng):
    """A model parameter (a variant selector, where the spec has variants) given a list or mapping."""
    params = data.get("params") if isinstance(data, dict) else None
    if isinstance(params, dict) and params:
        selectors = [k for k in data.get("variants") or {} if k in params] if isinstance(data.get("variants"), dict) else []
        key = rng.choice(selectors or list(params))
        params[key] = copy.deepcopy(rng.choice([[params[key]], [], {"a": params[key]}, [[1]] * 4]))


def _huge_budget(data, spots, rng):
    if isinstance(data, dict):
        digits = "1" + "0" * rng.choice([19, 30, 400, 5000])
        data["budgets"] = {rng.choice(["params", "macs"]): digits + rng.choice(["", "G", ".5T"])}


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
    _data_mutation(_float_power),
    _data_mutation(_float_param),
    _data_mutation(_huge_list),
    _data_mutation(_hostile_call),
    _data_mutation(_doubling_params),
    _data_mutation(_dunder_id),
    _data_mutation(_absurd_size),
    _data_mutation(_absurd_size),
    _data_mutation(_list_param),
    _data_mutation(_huge_budget),
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
    from nncompile.cli import main

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
    from nncompile.compiler import SpecError, costs
    from nncompile.compiler.emit import emit, example_inputs

    from nncompile import compiler

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
    except SpecError as error:
        if all(d.code == "E0407" and d.span is not None for d in error.diagnostics):
            return Outcome(0, refused=True)
        return Outcome(0, failure=f"check passed but build refused it: {error}"[:3000])
    except Exception as error:  # check said clean: any failure here is a bug
        return Outcome(0, failure=f"check passed but build or run failed: {type(error).__name__}: {error}"[:3000])


def fuzz_item(item: int | str, folder: Path) -> dict[str, Any]:
    """One mutant through `fuzz_one`: a seed's (written to `folder`) or a mutant file's; the outcome as a record."""
    if isinstance(item, int):
        source, text = mutant(item)
        path = folder / "mutant.yaml"
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
    else:
        source = path = Path(item)
    outcome = fuzz_one(path)
    return {"item": item, "spec": source.name, **dataclasses.asdict(outcome)}


_CHILD = """
import json, resource, sys, tempfile, warnings
from pathlib import Path
limit = int(sys.argv[1]) * 2**30
resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
sys.path[:0] = [sys.argv[2], sys.argv[2] + '/tests']
warnings.simplefilter('ignore')
from mutate import fuzz_item
folder = Path(tempfile.mkdtemp())
for line in sys.stdin:
    print(json.dumps(fuzz_item(json.loads(line), folder)), flush=True)
"""


def run_mutants(items: Iterable[int | str], memory_gib: int) -> list[dict[str, Any]]:
    """`fuzz_item` of each seed or mutant file in a child process whose data (heap and anonymous
    mappings, RLIMIT_DATA) is limited to `memory_gib`, so a build that allocates hundreds of GB fails
    there instead of taking this machine. A child that dies (memory, a crash) fails the item it was
    on; a new child takes the rest."""
    items = list(items)
    if not items:
        return []
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(memory_gib), str(ROOT)],
        input="".join(json.dumps(item) + "\n" for item in items),
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 and len(records) < len(items):
        culprit = items[len(records)]
        spec = Path(culprit).name if isinstance(culprit, str) else "?"
        failure = f"the child process ended with {result.returncode}:\n{result.stderr[-2000:]}"
        records.append({"item": culprit, "spec": spec, **dataclasses.asdict(Outcome(-1, failure=failure))})
        records += run_mutants(items[len(records) :], memory_gib)
    return records
