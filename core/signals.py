"""What a domain announces without knowing who listens: a job reached a terminal status, a safety report was
stored, a file was uploaded. Standard library only, below every domain, so the domains never import what
observes them (metrics, webhooks: core/hooks.py connects those, and the API and worker processes import it).
A listener runs inside the caller's unit of work and must not raise."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Listener = Callable[..., None]


class Signal:
    def __init__(self, name: str) -> None:
        self.name = name
        self._listeners: list[Listener] = []

    def connect(self, fn: Listener) -> Listener:
        if fn not in self._listeners:
            self._listeners.append(fn)
        return fn

    def send(self, *args: Any) -> None:
        for fn in list(self._listeners):
            fn(*args)


job_finished = Signal("job_finished")  # (session, job_id, status): any status change; listeners filter
report_saved = Signal("report_saved")  # (session, report dict)
file_uploaded = Signal("file_uploaded")  # (session, bytes)
