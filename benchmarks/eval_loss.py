"""Next-token cross-entropy: classes-last scores moved to dim 1 (the old loss) against flattened to
`[B*T, V]` (the loss now), and the largest temporary of one validation batch's loss and tally, the
old way (a float32 copy of the logits for the tally, autocast's float32 copy for the loss) against
the chunked loss now. On the CPU, in one process.

    python benchmarks/eval_loss.py [--batch 8] [--tokens 128] [--vocab 50257] [--rounds 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).parent))
from common import interleaved, machine
from nncompile.runtime.loop import Tally, flat_labels
from nncompile.runtime.optim import loss_function


class Largest(TorchDispatchMode):
    """The largest tensor an op allocates (views of its inputs not counted)."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        given = {a.untyped_storage().data_ptr() for a in args if isinstance(a, torch.Tensor)}
        for out in result if isinstance(result, (tuple, list)) else [result]:
            if isinstance(out, torch.Tensor) and out.untyped_storage().data_ptr() not in given:
                self.bytes = max(self.bytes, out.untyped_storage().nbytes())
        return result


def old_validation(logits: torch.Tensor, labels: torch.Tensor) -> None:
    """The loss on a movedim view and the tally's float32 copy of the scores, as the loop had them."""
    F.cross_entropy(logits.movedim(-1, 1), labels)
    scores, flat = flat_labels(logits.float(), labels)
    (scores.argmax(-1) == flat).sum()


def new_validation(logits: torch.Tensor, labels: torch.Tensor) -> None:
    tally = Tally(torch.device("cpu"), logits.shape[-1], sequence=True)
    tally.add(loss_function({"loss": "cross_entropy"})(logits, labels), logits, labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--vocab", type=int, default=50257)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    logits = torch.randn(args.batch, args.tokens, args.vocab)
    labels = torch.randint(0, args.vocab, (args.batch, args.tokens))
    print(f"{machine()}\nlogits [{args.batch}, {args.tokens}, {args.vocab}]\n")

    def step(flatten: bool) -> None:
        leaf = logits.detach().requires_grad_()
        scores = leaf.reshape(-1, args.vocab) if flatten else leaf.movedim(-1, 1)
        F.cross_entropy(scores, labels.reshape(-1) if flatten else labels).backward()

    times = interleaved({"movedim": lambda: step(False), "flattened": lambda: step(True)}, args.rounds, 1)
    print("| cross-entropy, forward + backward, float32 | ms |\n|---|---|")
    for name, seconds in times.items():
        print(f"| {name} | {seconds * 1e3:.1f} |")
    print(f"\nmovedim / flattened: {times['movedim'] / times['flattened']:.2f}x\n")

    half = logits.to(torch.bfloat16)
    print("| validation batch, bf16 logits under autocast | largest temporary (MiB) |\n|---|---|")
    print(f"| (the logits themselves) | {half.nbytes / 2**20:.1f} |")
    for name, run in (("before: movedim, float32 copies", old_validation), ("now: chunked loss, no copy", new_validation)):
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16), Largest() as largest:
            run(half, labels)
        print(f"| {name} | {largest.bytes / 2**20:.1f} |")


if __name__ == "__main__":
    main()
