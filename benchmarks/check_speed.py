"""How fast `nncompile check` is, against `import torch` alone, each in a fresh process.

    python benchmarks/check_speed.py [--rounds 5]

Also times a generated 2,000-layer spec, to show how `check` scales.
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
    specs = sorted(str(p) for p in (ROOT / "specs").glob("*.yaml"))
    check = [sys.executable, "-m", "runtime.cli", "check", *specs]
    torch_import = wall([sys.executable, "-c", "import torch"], rounds)
    check_all = wall(check, rounds)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.yaml"
        path.write_text(big_spec(2000))
        check_big = wall([sys.executable, "-m", "runtime.cli", "check", str(path)], rounds)
    print("| command | median wall time | ratio to `import torch` |")
    print("|---|---|---|")
    print(f"| `python -c 'import torch'` | {torch_import:.2f} s | 1.00 |")
    print(f"| `nncompile check specs/*.yaml` ({len(specs)} specs) | {check_all:.2f} s | {check_all / torch_import:.2f} |")
    print(f"| `nncompile check` on a 2,000-layer spec | {check_big:.2f} s | {check_big / torch_import:.2f} |")


if __name__ == "__main__":
    main()
