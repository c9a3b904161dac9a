"""Progress: a bar redrawn in place on a terminal; on a pipe (CI logs) only one line per epoch."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from nncompile.compiler.diagnostics import printable


class Progress:
    def __init__(self, enabled: bool = True, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.live = enabled and self.stream.isatty()
        self.enabled = enabled
        self.last_draw = 0.0
        self.started: tuple[int, int, float] | None = None
        """(epoch, batches done, time) when the bar of this epoch was first drawn."""

    def update(self, epoch: int, epochs: int, done: int, total: int, loss: float | None = None) -> None:
        """Redraw the bar (at most ten times a second) with the rate and the time left in the epoch;
        does nothing off a terminal."""
        now = time.monotonic()
        if not self.live or (now - self.last_draw < 0.1 and done < total):
            return
        self.last_draw = now
        if self.started is None or self.started[0] != epoch or done < self.started[1]:
            self.started = (epoch, done, now)
        width = 30
        filled = width * done // max(1, total)
        loss_text = f" loss {loss:.4f}" if loss is not None else ""
        bar = f"\repoch {epoch}/{epochs} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}{loss_text}{self._pace(done, total, now)}"
        self.stream.write(f"{bar}\x1b[K")
        self.stream.flush()

    def _pace(self, done: int, total: int, now: float) -> str:
        """` 12.5 it/s, 0:42 left`, once the epoch has run long enough to tell."""
        assert self.started is not None
        _, first, since = self.started
        elapsed, steps = now - since, done - first
        if steps <= 0 or elapsed <= 0:
            return ""
        rate = steps / elapsed
        left = int((total - done) / rate)
        return f" {rate:.1f} it/s, {left // 60}:{left % 60:02d} left"

    def wants_loss(self) -> bool:
        """Whether the next update would draw (reading the loss costs a device sync)."""
        return self.live and time.monotonic() - self.last_draw >= 0.1

    def line(self, text: str) -> None:
        """A permanent line (an epoch summary, a note), clearing the bar first."""
        if not self.enabled:
            return
        if self.live:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
        print(printable(text), flush=True)  # error text and paths may hold any byte a file name does
