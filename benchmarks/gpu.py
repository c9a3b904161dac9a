"""Training throughput on a GPU: hand-written loops against `nncompile train`, in one process.

    python benchmarks/gpu.py [--model resnet50|vit_b_16|all] [--batch 256] [--steps 60]
    python benchmarks/gpu.py --smoke          # a few tiny steps on the CPU: checks the script runs

Synthetic ImageNet-shaped data (3×224×224, 1,000 classes) resident on the device. For each model:
(a) torchvision's model in a hand-written fp32 eager loop, (b) the same with AMP (bf16 where the GPU runs
it natively, else fp16 with a scaler) and channels_last, the best hand-written loop, (c) `nncompile
train` of the spec with `amp: auto`, `channels_last: auto` and `compile: true`. Images per second of
training (the median over steps after warm-up; for (c), the run's own samples/s over its epochs after
the first, which holds compilation) and peak memory. Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torchvision
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SPECS = {"resnet50": ROOT / "specs" / "resnet50.yaml", "vit_b_16": ROOT / "specs" / "zoo" / "vit_b_16.yaml"}


def reference(name: str, image: int) -> nn.Module:
    if name == "vit_b_16":
        return torchvision.models.vit_b_16(image_size=image)
    return torchvision.models.resnet50()


def amp_dtype(device: torch.device) -> torch.dtype | None:
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16


def hand_written(model: nn.Module, data: torch.Tensor, labels: torch.Tensor, steps: int, warmup: int, fast: bool) -> tuple[float, int]:
    """Images/s and peak bytes of a plain training loop (SGD with momentum, cross-entropy)."""
    device = data.device
    dtype = amp_dtype(device) if fast else None
    if fast and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        data = data.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    _reset_peak(device)
    times = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            loss = loss_fn(model(data), labels)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        _sync(device)
        if step >= warmup:
            times.append(time.perf_counter() - start)
    return len(data) / statistics.median(times), _peak(device)


def nncompile_train(name: str, image: int, batch: int, steps: int, device: torch.device, smoke: bool) -> tuple[float, int]:
    """Images/s and peak bytes of `nncompile train` of the spec on resident synthetic data."""
    from nncompile.runtime import train

    from nncompile import compiler

    model = compiler.build(SPECS[name], **({"image_size": image} if name == "vit_b_16" else {}))
    per_epoch = 5
    samples = batch * per_epoch
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.pt"
        generator = torch.Generator().manual_seed(0)
        images = torch.randn(samples + batch, 3, image, image, generator=generator)
        torch.save({"inputs": images, "targets": torch.randint(0, 1000, (samples + batch,), generator=generator)}, path)
        config = {
            "epochs": max(2, steps // per_epoch + 1),
            "batch_size": batch,
            "data": {"dataset": "tensors", "path": str(path), "val_split": batch / (samples + batch), "resident": True},
            "optimizer": {"type": "sgd", "lr": 0.01, "momentum": 0.9},
            "device": device.type,
            "amp": "auto",
            "channels_last": "auto",
            "compile": not smoke,
        }
        _reset_peak(device)
        run = train(model, config)
    rates = [record["samples_per_s"] for record in run.history[1:]] or [run.history[0]["samples_per_s"]]
    return statistics.median(rates), _peak(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak(device: torch.device) -> int:
    return torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0


def measure(name: str, batch: int, steps: int, warmup: int, device: torch.device, smoke: bool) -> list[str]:
    image = 32 if smoke and name == "vit_b_16" else 224  # the resnet50 spec's input is 224×224
    torch.manual_seed(0)
    data = torch.randn(batch, 3, image, image, device=device)
    labels = torch.randint(0, 1000, (batch,), device=device)
    rows: list[tuple[str, float, int]] = []
    runs: list[tuple[str, Callable[[], tuple[float, int]]]] = [
        ("(a) hand-written, fp32 eager", lambda: hand_written(reference(name, image).to(device), data, labels, steps, warmup, False)),
        (
            "(b) hand-written, AMP + channels_last",
            lambda: hand_written(reference(name, image).to(device), data, labels, steps, warmup, True),
        ),
        ("(c) nncompile train (amp, channels_last, compile)", lambda: nncompile_train(name, image, batch, steps, device, smoke)),
    ]
    for label, run in runs:
        rate, peak = run()
        rows.append((label, rate, peak))
    base = rows[0][1]
    return [
        f"| {name} | {label} | {rate:,.{0 if rate >= 100 else 2}f} | {rate / base:.2f} | {peak / 2**30:.1f} GiB |"
        for label, rate, peak in rows
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=[*SPECS, "all"], default="all")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU, to check the script runs")
    args = parser.parse_args()
    device = torch.device("cpu" if args.smoke or not torch.cuda.is_available() else "cuda")
    if device.type != "cuda" and not args.smoke:
        print("no CUDA device: not measured (run with --smoke to check the script on the CPU)")
        return
    batch, steps, warmup = (2, 1, 1) if args.smoke else (args.batch, args.steps, args.warmup)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (smoke run, not a measurement)"
    print(f"{name}, torch {torch.__version__}, batch {batch}, {steps} steps after {warmup} warm-up")
    print("| model | loop | images/s | vs (a) | peak memory |")
    print("|---|---|--:|--:|--:|")
    for model in SPECS if args.model == "all" else [args.model]:
        for row in measure(model, batch, steps, warmup, device, args.smoke):
            print(row, flush=True)


if __name__ == "__main__":
    main()
