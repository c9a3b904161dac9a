"""Training throughput of `nncompile train` against the seed's hand-written loop, same model, same data.

    python benchmarks/train_loop.py [--rounds 3] [--epochs 2] [--device cpu|cuda]

The data is MNIST-sized (60,000 training and 10,000 validation images of 1x28x28, random pixels, so
no download). Each candidate trains the seed's MLP (784-500-10, Adam lr 1e-3, batch 100) for the same
epochs and evaluates the held-out images after each epoch; we time the whole run. Candidates:

- seed loop: the tutorial's code, a DataLoader over the tensors, `.to(device)` per batch;
- resident loop: the best hand-written loop (the data kept on the device, batches are slices);
- nncompile: `runtime.train` on the compiled `specs/mnist_mlp.yaml`, the data given as a tensors file.

On CUDA, `nncompile train (bf16 amp)` adds autocast.
Ratio = samples/s of the candidate / samples/s of the seed loop (> 1: faster).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from common import machine

from nncompile import compiler, runtime

SPECS = Path(__file__).resolve().parent.parent / "specs"
TRAIN, VAL, BATCH = 60_000, 10_000, 100


class NeuralNet(nn.Module):
    """The seed tutorial's network, verbatim."""

    def __init__(self, input_size: int = 784, hidden_size: int = 500, num_classes: int = 10):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden_size, num_classes)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


def seed_loop(images, labels, epochs: int, device: torch.device, resident: bool) -> None:
    """The seed's training and test loops (with `resident`, slices of device tensors instead of a DataLoader)."""
    torch.manual_seed(0)
    model = NeuralNet().to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_x, train_y, val_x, val_y = images[:TRAIN], labels[:TRAIN], images[TRAIN:], labels[TRAIN:]
    if resident:
        train_x, train_y, val_x, val_y = (t.to(device) for t in (train_x, train_y, val_x, val_y))
    dataset = torch.utils.data.TensorDataset(train_x, train_y)
    test = torch.utils.data.TensorDataset(val_x, val_y)
    for _ in range(epochs):
        model.train()
        if resident:
            order = torch.randperm(TRAIN, device=device)
            batches = ((train_x[i], train_y[i]) for i in order.split(BATCH))
        else:
            batches = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True)
        for x, y in batches:
            x, y = x.reshape(-1, 28 * 28).to(device), y.to(device)
            loss = criterion(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            tests = zip(val_x.split(BATCH), val_y.split(BATCH)) if resident else torch.utils.data.DataLoader(test, batch_size=BATCH)
            for x, y in tests:
                x, y = x.reshape(-1, 28 * 28).to(device), y.to(device)
                correct += (model(x).argmax(1) == y).sum().item()


def nncompile_train(data_file: Path, spec: Path, epochs: int, device: torch.device, **settings) -> None:
    torch.manual_seed(0)
    model = compiler.build(spec)
    config = {
        "epochs": epochs,
        "batch_size": BATCH,
        "device": str(device),
        "data": {"dataset": "tensors", "path": str(data_file), "val_split": VAL / (TRAIN + VAL)},
        "optimizer": {"type": "adam", "lr": 1e-3},
        **settings,
    }
    runtime.train(model, config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(TRAIN + VAL, 1, 28, 28, generator=generator)
    labels = torch.randint(0, 10, (TRAIN + VAL,), generator=generator)
    with tempfile.TemporaryDirectory() as folder:
        data_file = Path(folder) / "mnist_sized.pt"
        torch.save({"inputs": images, "targets": labels}, data_file)
        spec = SPECS / "mnist_mlp.yaml"
        candidates = {
            "seed loop (DataLoader)": lambda: seed_loop(images, labels, args.epochs, device, resident=False),
            "hand-written resident loop": lambda: seed_loop(images, labels, args.epochs, device, resident=True),
            "nncompile train": lambda: nncompile_train(data_file, spec, args.epochs, device, amp="off"),
        }
        if device.type == "cuda":
            candidates["nncompile train (bf16 amp)"] = lambda: nncompile_train(data_file, spec, args.epochs, device, amp="bf16")
        times: dict[str, list[float]] = {name: [] for name in candidates}
        for _ in range(args.rounds):
            for name, run in candidates.items():
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
    samples = (TRAIN + VAL) * args.epochs
    base = statistics.median(times["seed loop (DataLoader)"])
    print(f"# {machine()}, device {device}" + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else ""))
    print(f"# {args.epochs} epochs of {TRAIN:,} + {VAL:,} samples, median of {args.rounds} interleaved rounds\n")
    print("| loop | median run | samples/s | ratio to the seed loop |\n|---|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.2f} s | {samples / median:,.0f} | {base / median:.3f} |")


if __name__ == "__main__":
    main()
