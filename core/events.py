"""Job events (append-only) and checkpoints, with OpenAI's cursor pagination (newest first)."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import NotFound
from core.orm import Checkpoint, JobEvent


def add(session: Session, job_id: str, message: str, level: str = "info", type: str = "message",  # noqa: A002
        data: dict | None = None) -> JobEvent:
    ev = JobEvent(job_id=job_id, message=message, level=level, type=type, data=data)
    session.add(ev)
    return ev


def page(session: Session, job_id: str, after: str | None, limit: int) -> tuple[list[JobEvent], bool]:
    q = select(JobEvent).where(JobEvent.job_id == job_id)
    if after:
        cur = session.scalar(select(JobEvent).where(JobEvent.id == after, JobEvent.job_id == job_id))
        if cur is None:
            raise NotFound("event", after, param="after")
        q = q.where(JobEvent.seq < cur.seq)
    rows = list(session.scalars(q.order_by(JobEvent.seq.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def since(session: Session, job_id: str, seq: int) -> list[JobEvent]:
    """Events after sequence number ``seq`` in chronological order (for the SSE stream)."""
    return list(session.scalars(select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.seq > seq)
                                .order_by(JobEvent.seq)))


def event_object(ev: JobEvent) -> dict:
    return {"object": "fine_tuning.job.event", "id": ev.id, "created_at": ev.created_at, "level": ev.level,
            "message": ev.message, "type": ev.type, "data": ev.data or {}}


def checkpoints(session: Session, job_id: str, after: str | None, limit: int) -> tuple[list[Checkpoint], bool]:
    q = select(Checkpoint).where(Checkpoint.job_id == job_id)
    if after:
        cur = session.get(Checkpoint, after)
        if cur is None or cur.job_id != job_id:
            raise NotFound("checkpoint", after, param="after")
        q = q.where(Checkpoint.step_number < cur.step_number)
    rows = list(session.scalars(q.order_by(Checkpoint.step_number.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def checkpoint_object(ck: Checkpoint, fine_tuned_model: str) -> dict:
    return {"object": "fine_tuning.job.checkpoint", "id": ck.id, "created_at": ck.created_at,
            "fine_tuned_model_checkpoint": f"{fine_tuned_model}:ckpt-step-{ck.step_number}",
            "fine_tuning_job_id": ck.job_id, "step_number": ck.step_number, "metrics": ck.metrics}
