"""Progress on a terminal for long offline runs (testbed and model builds, benchmarks): a bar with the rate
and an ETA, redrawn in place on a TTY and printed every 10 % otherwise (CI logs)."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from tuning.interfaces import NullProgress


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"


class ConsoleProgress(NullProgress):
    def __init__(self, label: str, stream: TextIO | None = None, every_s: float = 0.5) -> None:
        self.label, self.stream, self.every_s = label, stream or sys.stderr, every_s
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._start: float | None = None
        self._last_draw = 0.0
        self._last_decile = -1

    def line(self, step: int, total: int, metrics: dict[str, Any]) -> str:
        assert self._start is not None
        elapsed = time.monotonic() - self._start
        frac = step / max(total, 1)
        eta = elapsed * (1 - frac) / frac if frac > 0 else 0.0
        bar = "#" * int(24 * frac) + "-" * (24 - int(24 * frac))
        loss = f" loss {metrics['loss']:.3f}" if isinstance(metrics.get("loss"), float) else ""
        return f"[{self.label}] {bar} {frac:4.0%} {step}/{total}{loss} {_clock(elapsed)} elapsed, ETA {_clock(eta)}"

    def on_step(self, step: int, total_steps: int, metrics: dict[str, Any]) -> None:
        t = time.monotonic()
        if self._start is None:
            self._start = t
        done = step >= total_steps
        if self.tty and (done or t - self._last_draw >= self.every_s):
            self._last_draw = t
            self.stream.write("\r" + self.line(step, total_steps, metrics) + ("\n" if done else ""))
            self.stream.flush()
        elif not self.tty and (decile := int(10 * step / max(total_steps, 1))) > self._last_decile:
            self._last_decile = decile
            self.stream.write(self.line(step, total_steps, metrics) + "\n")
            self.stream.flush()
