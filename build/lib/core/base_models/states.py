"""Safety-mask version statuses; a version becomes current only once ready."""

from __future__ import annotations

from enum import StrEnum


class MaskStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    READY = "ready"
    FAILED = "failed"


CLAIMABLE = frozenset({MaskStatus.QUEUED, MaskStatus.FAILED})
