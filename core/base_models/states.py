"""Safety-mask version statuses; a version becomes current only once ready."""

from __future__ import annotations

from enum import StrEnum


class MaskStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    READY = "ready"
    FAILED = "failed"
    EXPIRED = "expired"  # superseded by KEEL_MASK_VERSIONS_KEPT newer ready versions: bytes removed, row kept
    BROKEN = "broken"  # was ready, but its bytes vanished from the store: recomputed by the next job needing it


CLAIMABLE = frozenset({MaskStatus.QUEUED, MaskStatus.FAILED, MaskStatus.BROKEN})
