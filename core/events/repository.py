"""Queries on job events and checkpoints."""

from __future__ import annotations

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from core.events.models import Checkpoint, JobEvent
from core.pagination import fetch_page


def add(session: Session, row: JobEvent | Checkpoint) -> None:
    session.add(row)


def get_event(session: Session, job_id: str, event_id: str) -> JobEvent | None:
    return session.scalar(select(JobEvent).where(JobEvent.id == event_id, JobEvent.job_id == job_id))


def events_before(session: Session, job_id: str, seq: int | None, limit: int) -> tuple[list[JobEvent], bool]:
    q = select(JobEvent).where(JobEvent.job_id == job_id)
    if seq is not None:
        q = q.where(JobEvent.seq < seq)
    return fetch_page(session, q.order_by(JobEvent.seq.desc()), limit)


def events_after(session: Session, job_id: str, seq: int) -> list[JobEvent]:
    return list(
        session.scalars(select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.seq > seq).order_by(JobEvent.seq))
    )


def events_after_each(session: Session, cursors: dict[str, int]) -> list[JobEvent]:
    """Events of each job after that job's own sequence number (one query; no job reads from another's
    cursor, so one stream on an old job never makes the others reload their history)."""
    if not cursors:
        return []
    each = [and_(JobEvent.job_id == job_id, JobEvent.seq > seq) for job_id, seq in cursors.items()]
    return list(session.scalars(select(JobEvent).where(or_(*each)).order_by(JobEvent.seq)))


def get_checkpoint(session: Session, job_id: str, checkpoint_id: str) -> Checkpoint | None:
    row = session.get(Checkpoint, checkpoint_id)
    return row if row is not None and row.job_id == job_id else None


def checkpoint_at(session: Session, job_id: str, step: int) -> Checkpoint | None:
    return session.scalar(select(Checkpoint).where(Checkpoint.job_id == job_id, Checkpoint.step_number == step))


def checkpoints_before(session: Session, job_id: str, step: int | None, limit: int) -> tuple[list[Checkpoint], bool]:
    q = select(Checkpoint).where(Checkpoint.job_id == job_id)
    if step is not None:
        q = q.where(Checkpoint.step_number < step)
    return fetch_page(session, q.order_by(Checkpoint.step_number.desc()), limit)
