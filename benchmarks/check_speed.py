"""How fast `nncompile check` is, against `import torch` alone, each in a fresh process.

    python benchmarks/check_speed.py [--rounds 5] [--hook]

Times every shipped spec at once, the slowest one alone, and generated specs of 1,000 to 10,000
written layers, to show how `check` scales. `--hook` also builds the environment the pre-commit hook
gets (a fresh venv with `pip install .`: the base install, no torch; needs the package index) and
reports its size, its install time, and `check` of each zoo spec run from it.
"""

from __future__ import annotations

import argparse
import os
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


def folder_size(path: Path) -> int:
    return sum(os.path.getsize(os.path.join(folder, name)) for folder, _, names in os.walk(path) for name in names)


def hook_rows(torch_import: float, rounds: int) -> None:
    """The pre-commit hook's environment: installed as pre-commit installs it, then timed."""
    with tempfile.TemporaryDirectory() as tmp:
        venv = Path(tmp) / "hook"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(ROOT)], check=True, capture_output=True)
        installed = time.perf_counter() - start
        size = folder_size(venv) / 2**20
        print(f"| the hook's environment (venv + `pip install .`, no torch): {size:.0f} MB | {installed:.1f} s to install | |")
        check = [str(venv / "bin" / "nncompile"), "check"]
        zoo = sorted(str(p) for p in (ROOT / "specs" / "zoo").glob("*.yaml"))
        alone = {spec: wall([*check, spec], rounds) for spec in zoo}
        slowest, fastest = max(alone, key=alone.get), min(alone.values())
        within = sum(seconds < torch_import / 10 for seconds in alone.values())
        print(
            f"| `nncompile check` of each zoo spec alone, from the hook's environment ({within} of {len(zoo)} under a tenth) "
            f"| {fastest:.2f}–{alone[slowest]:.2f} s | {fastest / torch_import:.3f}–{alone[slowest] / torch_import:.3f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--hook", action="store_true", help="also time check from the pre-commit hook's torch-free environment")
    options = parser.parse_args()
    rounds = options.rounds
    specs = sorted(str(p) for p in (ROOT / "specs").rglob("*.yaml"))
    check = [sys.executable, "-m", "nncompile", "check"]
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
    if options.hook:
        hook_rows(torch_import, rounds)


if __name__ == "__main__":
    main()
