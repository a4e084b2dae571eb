"""Seconds per named part of the realignment stage, for the report's ``timings``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class Clock:
    """Seconds per named part of the stage (summed when a part repeats), for the report's ``timings``."""

    def __init__(self) -> None:
        self.parts: dict[str, float] = {}
        self.cpu: dict[str, float] = {}  # this process's CPU seconds per part (robust to a busy machine)

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        t, c = time.monotonic(), time.process_time()
        try:
            yield
        finally:
            self.parts[name] = round(self.parts.get(name, 0.0) + time.monotonic() - t, 3)
            self.cpu[name] = round(self.cpu.get(name, 0.0) + time.process_time() - c, 3)
