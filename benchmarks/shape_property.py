"""The two-way shape proof at scale: generated specs through `check` and through torch.

    python benchmarks/shape_property.py [COUNT] [FIRST_SEED]

Each seed makes one spec with torch's verdict on it (tests/shapegen.py); `check` must accept exactly
the specs torch runs and agree on every layer's shape, dtype, parameters and MACs. Prints a Markdown
table: specs, accepted (torch's verdict), disagreements (must be 0), and time per spec spent in
torch (generating and running the case) and in `check`. Exits 1 on any disagreement, listing the
first few seeds and specs.
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from common import machine  # noqa: E402
from shapegen import compare, generate  # noqa: E402

from nncompile import compiler  # noqa: E402


def main(count: int, first: int) -> int:
    warnings.simplefilter("ignore")  # torch's notices about odd but valid settings (padding='same' with even kernels)
    accepted, failures = 0, []
    torch_seconds = check_seconds = 0.0
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "spec.yaml"
        for seed in range(first, first + count):
            start = time.perf_counter()
            case = generate(seed)
            middle = time.perf_counter()
            path.write_text(yaml.safe_dump(case.spec, sort_keys=False))
            problems = compare(case, compiler.analyze(path, case.overrides))
            check_seconds += time.perf_counter() - middle
            torch_seconds += middle - start
            accepted += case.accepted
            if problems:
                failures.append((seed, problems, case))
    print(f"Machine: {machine()}\n")
    print("| specs | seeds | torch runs (accepted) | disagreements | torch per spec | check per spec |")
    print("|---:|---|---:|---:|---:|---:|")
    print(
        f"| {count:,} | {first}–{first + count - 1} | {accepted:,} ({accepted / count:.1%}) | {len(failures)} "
        f"| {torch_seconds / count * 1000:.1f} ms | {check_seconds / count * 1000:.1f} ms |"
    )
    for seed, problems, case in failures[:5]:
        print(f"\nseed {seed}: {problems}\n{yaml.safe_dump(case.spec, sort_keys=False)}overrides: {case.overrides}")
    return 1 if failures else 0


if __name__ == "__main__":
    arguments = [int(a) for a in sys.argv[1:]]
    sys.exit(main(*(arguments + [10_000, 0][len(arguments) :])))
