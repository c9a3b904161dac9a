"""Full-size exports of every zoo spec: TorchScript, torch.export and ONNX, each written, reloaded and
compared with the eager model by `nncompile build` (at two sizes where the spec's sizes are symbolic).

    python benchmarks/zoo_exports.py [NAME ...]

Prints a Markdown table: per spec and format, whether it verified and how long `nncompile build` took.
The tests export a small configuration of each spec; this is the full one. It takes a while on a CPU.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORMATS = (".pt", ".pt2", ".onnx")


def build(spec: Path, output: Path) -> tuple[bool, float, str]:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "build", str(spec), "-o", str(output)], capture_output=True, text=True, cwd=ROOT
    )
    seconds = time.perf_counter() - start
    output.unlink(missing_ok=True)
    last = (result.stderr.strip().splitlines() or [""])[-1]
    return result.returncode == 0, seconds, last


def main() -> None:
    names = sys.argv[1:] or sorted(path.stem for path in (ROOT / "specs" / "zoo").glob("*.yaml"))
    print("| spec | " + " | ".join(FORMATS) + " |")
    print("|---|" + "---|" * len(FORMATS))
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            cells = []
            for suffix in FORMATS:
                ok, seconds, last = build(ROOT / "specs" / "zoo" / f"{name}.yaml", Path(tmp) / f"{name}{suffix}")
                cells.append(f"verified, {seconds:.0f} s" if ok else f"FAILED ({last[:80]})")
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
