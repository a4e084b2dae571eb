"""Job events (append-only) and checkpoints, newest first with OpenAI's cursor pagination."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from core.errors import NotFound
from core.events import repository as repo
from core.events.models import Checkpoint, JobEvent


def add(
    session: Session,
    job_id: str,
    message: str,
    level: str = "info",
    type: str = "message",
    data: dict[str, Any] | None = None,
) -> JobEvent:
    ev = JobEvent(job_id=job_id, message=message, level=level, type=type, data=data)
    repo.add(session, ev)
    return ev


def page(session: Session, job_id: str, after: str | None, limit: int) -> tuple[list[JobEvent], bool]:
    seq = None
    if after:
        cur = repo.get_event(session, job_id, after)
        if cur is None:
            raise NotFound("event", after, param="after")
        seq = cur.seq
    return repo.events_before(session, job_id, seq, limit)


def resume_point(session: Session, job_id: str, event_id: str | None) -> int:
    """Sequence number a stream resumed after ``event_id`` starts from (0: from the first event)."""
    if not event_id:
        return 0
    cur = repo.get_event(session, job_id, event_id)
    if cur is None:
        raise NotFound("event", event_id, param="after")
    return cur.seq


def since(session: Session, job_id: str, seq: int) -> list[JobEvent]:
    """Events after sequence number ``seq`` in chronological order (for the SSE stream)."""
    return repo.events_after(session, job_id, seq)


def since_each(session: Session, cursors: dict[str, int]) -> dict[str, list[JobEvent]]:
    """For each job, its events after its own sequence number, in order: one query for all the jobs, each job
    read from its own cursor."""
    out: dict[str, list[JobEvent]] = {job_id: [] for job_id in cursors}
    for ev in repo.events_after_each(session, cursors):
        out[ev.job_id].append(ev)
    return out


def checkpoints(session: Session, job_id: str, after: str | None, limit: int) -> tuple[list[Checkpoint], bool]:
    step = None
    if after:
        cur = repo.get_checkpoint(session, job_id, after)
        if cur is None:
            raise NotFound("checkpoint", after, param="after")
        step = cur.step_number
    return repo.checkpoints_before(session, job_id, step, limit)


def record_checkpoint(session: Session, job_id: str, step: int, path: str, metrics: dict[str, Any]) -> bool:
    """Idempotent: a step already recorded (a resumed run saving it again) is left alone."""
    if repo.checkpoint_at(session, job_id, step) is not None:
        return False
    repo.add(session, Checkpoint(job_id=job_id, step_number=step, path=path, metrics=metrics))
    add(session, job_id, f"Checkpoint saved at step {step}")
    return True
