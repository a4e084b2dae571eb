"""Protocols the pure ML code calls back into; the worker implements them over the database."""

from __future__ import annotations

from typing import Any, Protocol


class Progress(Protocol):
    def on_step(self, step: int, total_steps: int, metrics: dict[str, Any]) -> None:
        """Called after every optimizer step (cheap; the implementation throttles writes)."""

    def on_checkpoint(self, step: int, path: str, metrics: dict[str, Any]) -> None:
        """Called after a checkpoint directory is completely written."""

    def should_stop(self) -> bool:
        """Polled between steps; True means stop promptly (cancellation)."""


class NullProgress:
    def on_step(self, step: int, total_steps: int, metrics: dict[str, Any]) -> None:
        pass

    def on_checkpoint(self, step: int, path: str, metrics: dict[str, Any]) -> None:
        pass

    def should_stop(self) -> bool:
        return False


class Stopped(Exception):
    """Raised inside long ML work (realignment trials, evaluations) when its ``should_stop`` turned true."""


class StopOnly(NullProgress):
    """A Progress that only relays cancellation (for training runs nested inside another stage)."""

    def __init__(self, should_stop: Any) -> None:
        self._should_stop = should_stop

    def should_stop(self) -> bool:
        return bool(self._should_stop())
