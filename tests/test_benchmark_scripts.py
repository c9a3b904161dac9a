"""The GPU benchmark runs end to end (at tiny sizes on the CPU), so it works when a GPU is there."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.slow
def test_the_gpu_benchmark_runs_at_smoke_size():
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--smoke"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith(("| resnet50 |", "| vit_b_16 |"))]
    assert len(rows) == 6 and all(float(row.split("|")[3].replace(",", "")) > 0 for row in rows)
    assert "not a measurement" in result.stdout


def test_without_a_gpu_it_says_not_measured():
    if __import__("torch").cuda.is_available():
        pytest.skip("a GPU is present")
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "not measured" in result.stdout
