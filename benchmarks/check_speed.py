"""How fast `nncompile check` is, against `import torch` alone, each in a fresh process.

    python benchmarks/check_speed.py [--rounds 5]

Times every shipped spec at once, the slowest one alone, and generated specs of 1,000 to 10,000
written layers, to show how `check` scales.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def wall(command: list[str], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def big_spec(layers: int) -> str:
    body = "".join(f"  - {{id: l{i}, op: linear, out: 16, activation: relu}}\n" for i in range(layers))
    return f"nncompile: 1\nname: big\ninputs: {{x: [16]}}\nlayers:\n{body}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    specs = sorted(str(p) for p in (ROOT / "specs").rglob("*.yaml"))
    check = [sys.executable, "-m", "nncompile.cli", "check"]
    torch_import = wall([sys.executable, "-c", "import torch"], rounds)
    check_all = wall([*check, *specs], rounds)
    alone = {spec: wall([*check, spec], max(1, rounds // 2)) for spec in specs}
    slowest = max(alone, key=alone.get)
    print("| command | median wall time | ratio to `import torch` |")
    print("|---|---|---|")
    print(f"| `python -c 'import torch'` | {torch_import:.2f} s | 1.00 |")
    print(f"| `nncompile check` on all {len(specs)} shipped specs at once | {check_all:.2f} s | {check_all / torch_import:.2f} |")
    name = Path(slowest).relative_to(ROOT)
    print(f"| `nncompile check {name}` (the slowest alone) | {alone[slowest]:.2f} s | {alone[slowest] / torch_import:.2f} |")
    fastest = min(alone.values())
    within = sum(seconds <= torch_import / 5 for seconds in alone.values())
    print(
        f"| `nncompile check` on each shipped spec alone ({within} of {len(alone)} within a fifth) "
        f"| {fastest:.2f}–{alone[slowest]:.2f} s | {fastest / torch_import:.2f}–{alone[slowest] / torch_import:.2f} |"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for layers in (1000, 2000, 5000, 10000):
            path = Path(tmp) / f"big{layers}.yaml"
            path.write_text(big_spec(layers))
            seconds = wall([*check, str(path)], rounds)
            print(f"| `nncompile check` on a {layers:,}-layer spec | {seconds:.2f} s | {seconds / torch_import:.2f} |")


if __name__ == "__main__":
    main()
