"""Mutation fuzzing at scale: mutants of every shipped spec through `check`, and through build and a
forward pass where `check` passes (tests/mutate.py, hostile mutations included).

    python benchmarks/fuzz.py [COUNT] [FIRST_SEED] [--memory-gib 3] [--show 5]

Mutants run in child processes whose data (heap and anonymous mappings, RLIMIT_DATA) is limited to
`--memory-gib`, in batches; a child that dies (memory, a crash) or a mutant over its time limit counts
as a failure. Prints a Markdown table (mutants, diagnosed, built, run, failures, time per mutant) and
the first failures; exits 1 on any.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from mutate import run_mutants  # noqa: E402  (tests/ is not a package)

BATCH = 500


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("count", type=int, nargs="?", default=10_000)
    parser.add_argument("first", type=int, nargs="?", default=0)
    parser.add_argument("--memory-gib", type=int, default=3)
    parser.add_argument("--show", type=int, default=5, help="print this many failures (default 5)")
    args = parser.parse_args()
    start = time.perf_counter()
    records = []
    for first in range(args.first, args.first + args.count, BATCH):
        records += run_mutants(range(first, min(first + BATCH, args.first + args.count)), args.memory_gib)
    seconds = time.perf_counter() - start
    failures = [r for r in records if r["failure"]]
    diagnosed = sum(r["status"] == 1 for r in records)
    built, ran = sum(r["built"] for r in records), sum(r["ran"] for r in records)
    passed, refused = sum(r["status"] == 0 for r in records), sum(r["refused"] for r in records)
    print("| mutants | seeds | diagnosed (exit 1) | passed check | refused by build (E0407) | built | run | failures | per mutant |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {len(records):,} | {args.first}–{args.first + args.count - 1} | {diagnosed:,} | {passed:,} | {refused:,} | {built:,} "
        f"| {ran:,} | {len(failures)} | {seconds / max(len(records), 1) * 1000:.0f} ms |"
    )
    for record in failures[: args.show]:
        print(f"\nseed {record['item']} ({record['spec']}): {record['failure']}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
