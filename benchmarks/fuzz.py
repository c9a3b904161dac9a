"""Mutation fuzzing at scale: mutants of every shipped spec through `check`, and through build and a
forward pass where `check` passes (tests/mutate.py).

    python benchmarks/fuzz.py [COUNT] [FIRST_SEED] [--memory-gib 3]

Mutants run in child processes whose data (heap and anonymous mappings, RLIMIT_DATA) is limited to `--memory-gib`, in batches; a child that
dies (memory, a crash) or a mutant over its time limit counts as a failure. Prints a Markdown table
(mutants, diagnosed, built, run, failures, time per mutant) and the first failures; exits 1 on any.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BATCH = 500
CHILD = """
import json, resource, sys, tempfile, warnings
from pathlib import Path
limit = int(sys.argv[3]) * 2**30
resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
sys.path[:0] = [sys.argv[4], sys.argv[4] + '/tests']
warnings.simplefilter('ignore')
from mutate import fuzz_one, mutant
folder = Path(tempfile.mkdtemp())
for seed in range(int(sys.argv[1]), int(sys.argv[2])):
    source, text = mutant(seed)
    path = folder / 'mutant.yaml'
    path.write_bytes(text.encode('utf-8', 'surrogateescape'))
    outcome = fuzz_one(path)
    print(json.dumps({'seed': seed, 'spec': source.name, 'status': outcome.status, 'built': outcome.built,
                      'ran': outcome.ran, 'failure': outcome.failure}), flush=True)
"""


def run_batch(first: int, end: int, memory_gib: int) -> list[dict]:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(first), str(end), str(memory_gib), str(ROOT)], capture_output=True, text=True, cwd=ROOT
    )
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0:  # the child died: the next seed is the culprit
        seed = records[-1]["seed"] + 1 if records else first
        records.append({"seed": seed, "spec": "?", "status": -1, "built": False, "ran": False, "failure": result.stderr[-2000:]})
        if seed + 1 < end:
            records += run_batch(seed + 1, end, memory_gib)
    return records


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("count", type=int, nargs="?", default=10_000)
    parser.add_argument("first", type=int, nargs="?", default=0)
    parser.add_argument("--memory-gib", type=int, default=3)
    args = parser.parse_args()
    start = time.perf_counter()
    records = []
    for first in range(args.first, args.first + args.count, BATCH):
        records += run_batch(first, min(first + BATCH, args.first + args.count), args.memory_gib)
    seconds = time.perf_counter() - start
    failures = [r for r in records if r["failure"]]
    diagnosed = sum(r["status"] == 1 for r in records)
    built, ran = sum(r["built"] for r in records), sum(r["ran"] for r in records)
    print("| mutants | seeds | diagnosed (exit 1) | passed check | built | run | failures | per mutant |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    passed = sum(r["status"] == 0 for r in records)
    print(
        f"| {len(records):,} | {args.first}–{args.first + args.count - 1} | {diagnosed:,} | {passed:,} | {built:,} | {ran:,} "
        f"| {len(failures)} | {seconds / max(len(records), 1) * 1000:.0f} ms |"
    )
    for record in failures[:5]:
        print(f"\nseed {record['seed']} ({record['spec']}): {record['failure']}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
