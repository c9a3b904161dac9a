"""Timing helpers shared by the benchmarks: interleaved rounds, medians, one table format."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable

import torch


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, Python {platform.python_version()}"


def interleaved(candidates: dict[str, Callable[[], None]], rounds: int, repeats: int) -> dict[str, float]:
    """Median seconds per call of each candidate, alternating candidates every round so that
    drift in machine load hits all of them alike."""
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, run in candidates.items():
            start = time.perf_counter()
            for _ in range(repeats):
                run()
            samples[name].append((time.perf_counter() - start) / repeats)
    return {name: statistics.median(values) for name, values in samples.items()}
