"""The GPU benchmark runs end to end (at tiny sizes on the CPU), so it works when a GPU is there.
The script runs in this process, as its own `__main__`: no time limit to miss on a busy machine."""

from __future__ import annotations

import runpy
import sys

import pytest
import torch
from conftest import ROOT

GPU = str(ROOT / "benchmarks" / "gpu.py")


def run_benchmark(monkeypatch, *flags: str) -> None:
    """`python benchmarks/gpu.py FLAGS…`, in this process."""
    monkeypatch.setattr(sys, "argv", [GPU, *flags])
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts the project first on the path
    runpy.run_path(GPU, run_name="__main__")


@pytest.mark.slow
def test_the_gpu_benchmark_runs_at_smoke_size(monkeypatch, capsys):
    state = torch.get_rng_state()
    try:
        run_benchmark(monkeypatch, "--smoke")
    finally:
        torch.set_rng_state(state)  # the script seeds torch; leave the tests after it as they were
    output = capsys.readouterr().out
    rows = [line for line in output.splitlines() if line.startswith(("| resnet50 |", "| vit_b_16 |"))]
    assert len(rows) == 6 and all(float(row.split("|")[3].replace(",", "")) > 0 for row in rows)
    assert "not a measurement" in output


def test_without_a_gpu_it_says_not_measured(monkeypatch, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    run_benchmark(monkeypatch)
    assert "not measured" in capsys.readouterr().out
