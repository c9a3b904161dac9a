"""Progress: a bar redrawn in place on a terminal; on a pipe (CI logs) only one line per epoch."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, enabled: bool = True, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.live = enabled and self.stream.isatty()
        self.enabled = enabled
        self.last_draw = 0.0

    def update(self, epoch: int, epochs: int, done: int, total: int, loss: float | None = None) -> None:
        """Redraw the bar (at most ten times a second); does nothing off a terminal."""
        now = time.monotonic()
        if not self.live or (now - self.last_draw < 0.1 and done < total):
            return
        self.last_draw = now
        width = 30
        filled = width * done // max(1, total)
        loss_text = f" loss {loss:.4f}" if loss is not None else ""
        self.stream.write(f"\repoch {epoch}/{epochs} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}{loss_text}\x1b[K")
        self.stream.flush()

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
        print(text, flush=True)
