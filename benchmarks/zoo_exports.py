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


def build(spec: Path, output: Path, fixed: list[str] = ()) -> tuple[bool, float, str]:
    start = time.perf_counter()
    command = [sys.executable, "-m", "nncompile.cli", "build", str(spec), "-o", str(output), *fixed]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    output.unlink(missing_ok=True)
    errors = [line for line in result.stderr.splitlines() if "error" in line] or result.stderr.strip().splitlines() or [""]
    return result.returncode == 0, seconds, errors[0]


def _sizes(spec: Path) -> list[str]:
    """`--set` flags fixing a spec's symbolic sizes at their defaults (for the ops an exporter cannot
    keep dynamic: adaptive pooling in ONNX, window attention in torch.export and ONNX)."""
    sys.path.insert(0, str(ROOT))
    from nncompile import compiler

    sizes = compiler.analyze(spec).graph.sizes
    return [part for name, size in sizes.items() for part in ("--set", f"{name}={size.example}")]


def main() -> None:
    names = sys.argv[1:] or sorted(path.stem for path in (ROOT / "specs" / "zoo").glob("*.yaml"))
    print("| spec | " + " | ".join(FORMATS) + " |")
    print("|---|" + "---|" * len(FORMATS))
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            cells = []
            spec = ROOT / "specs" / "zoo" / f"{name}.yaml"
            for suffix in FORMATS:
                ok, seconds, last = build(spec, Path(tmp) / f"{name}{suffix}")
                if ok or not _sizes(spec):
                    cells.append(f"verified, {seconds:.0f} s" if ok else f"FAILED ({last[:80]})")
                    continue
                ok, seconds, last = build(spec, Path(tmp) / f"{name}{suffix}", _sizes(spec))
                fixed = " ".join(_sizes(spec)[1::2])
                cells.append(f"dynamic sizes refused; verified with {fixed}, {seconds:.0f} s" if ok else f"FAILED ({last[:80]})")
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
