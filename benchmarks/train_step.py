"""Training-step speed of compiled specs against their hand-written equivalents, in one process.

    python benchmarks/train_step.py [--rounds 7]

Reports the median time of a training step (forward, cross-entropy, backward, SGD step) and the
ratio compiled / hand-written (1.00 = as fast; < 1 faster).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torchvision
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from common import interleaved, machine

from nncompile import compiler

SPECS = Path(__file__).resolve().parent.parent / "specs"


class SeedMLP(nn.Module):
    """The seed tutorial's hand-written MNIST network."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 500)
        self.fc2 = nn.Linear(500, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


def step_fn(model: nn.Module, batch: torch.Tensor, labels: torch.Tensor):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(batch), labels).backward()
        optimizer.step()

    return step


def compare(name: str, ours: nn.Module, reference: nn.Module, shape: tuple[int, ...], batch: int, rounds: int, repeats: int) -> str:
    torch.manual_seed(0)
    ours.load_state_dict(reference.state_dict(), strict=True)
    x, y = torch.randn(batch, *shape), torch.randint(0, 10, (batch,))
    candidates = {"compiled": step_fn(ours.train(), x, y), "hand-written": step_fn(reference.train(), x, y)}
    for run in candidates.values():
        run()  # warm-up
    times = interleaved(candidates, rounds, repeats)
    ratio = times["compiled"] / times["hand-written"]
    return f"| {name} | {batch} | {times['hand-written'] * 1e3:.1f} ms | {times['compiled'] * 1e3:.1f} ms | {ratio:.3f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(f"machine: {machine()}\n")
    print("| model | batch | hand-written step | compiled step | ratio |")
    print("|---|---|---|---|---|")
    print(compare("mnist_mlp vs seed MLP", compiler.build(SPECS / "mnist_mlp.yaml"), SeedMLP(), (1, 28, 28), 100, args.rounds, 20))
    resnet = torchvision.models.resnet18(num_classes=10)
    print(
        compare(
            "resnet18 vs torchvision", compiler.build(SPECS / "resnet18.yaml", num_classes=10), resnet, (3, 224, 224), 8, args.rounds, 2
        )
    )


if __name__ == "__main__":
    main()
