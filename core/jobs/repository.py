"""Queries on jobs. Every status change is one conditional UPDATE guarded by the transition table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from core import signals
from core.files.models import File
from core.ids import now
from core.jobs.models import Job
from core.jobs.states import ACTIVE, JobStatus, sources
from core.pagination import after_cursor, fetch_page
from core.results.models import Artifact


def get(session: Session, job_id: str) -> Job | None:
    return session.get(Job, job_id)


def by_idempotency_key(session: Session, tenant_id: str, key: str) -> Job | None:
    return session.scalar(select(Job).where(Job.tenant_id == tenant_id, Job.idempotency_key == key))


def add(session: Session, row: Job) -> None:
    session.add(row)
    session.flush()


def active_job_using(session: Session, file_id: str) -> str | None:
    """Id of an active job that reads this file, if any."""
    return session.scalar(
        select(Job.id)
        .where(Job.status.in_(list(ACTIVE)), (Job.training_file == file_id) | (Job.validation_file == file_id))
        .limit(1)
    )


def page(
    session: Session, tenant_id: str, cursor: Job | None, limit: int, metadata: dict[str, str] | None
) -> tuple[list[Job], bool]:
    q = select(Job).where(Job.tenant_id == tenant_id)
    for k, v in (metadata or {}).items():
        q = q.where(Job.metadata_[k].as_string() == v)
    key = (cursor.created_at, cursor.id) if cursor else None
    return fetch_page(session, after_cursor(q, Job.created_at, Job.id, key), limit)


def status(session: Session, job_id: str) -> str | None:
    return session.scalar(select(Job.status).where(Job.id == job_id))


def statuses(session: Session, job_ids: list[str]) -> dict[str, str]:
    if not job_ids:
        return {}
    out: dict[str, str] = {}
    for job_id, status in session.execute(select(Job.id, Job.status).where(Job.id.in_(job_ids))):
        out[job_id] = status
    return out


def queue_positions(session: Session, job_ids: list[str]) -> dict[str, int]:
    """1-based FIFO positions (oldest first, all tenants) of those of ``job_ids`` that are queued: one ranked
    query whatever the number of ids."""
    if not job_ids:
        return {}
    ranked = (
        select(Job.id.label("id"), func.row_number().over(order_by=(Job.created_at, Job.id)).label("pos"))
        .where(Job.status == JobStatus.QUEUED)
        .subquery()
    )
    rows = session.execute(select(ranked.c.id, ranked.c.pos).where(ranked.c.id.in_(job_ids)))
    return {job_id: int(pos) for job_id, pos in rows}


def transition(session: Session, job_id: str, target: JobStatus, *where: ColumnElement[bool], **values: Any) -> bool:
    """Move ``job_id`` to ``target`` if its current status allows it (and ``where`` holds). True if it moved."""
    res = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(list(sources(target))), *where)
        .values(status=target, **values)
    )
    moved = bool(getattr(res, "rowcount", 0) == 1)
    if moved:
        signals.job_finished.send(session, job_id, target)  # metrics, webhooks (after commit); no-op unless terminal
    return moved


def claim(session: Session, job_id: str, owner: str, lease_s: int) -> bool:
    """queued → running, or steal an expired lease. Exactly one concurrent caller wins."""
    t = now()
    res = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            or_(Job.status == JobStatus.QUEUED, and_(Job.status == JobStatus.RUNNING, Job.lease_expires_at < t)),
        )
        .values(
            status=JobStatus.RUNNING,
            lease_owner=owner,
            lease_expires_at=t + lease_s,
            attempt=Job.attempt + 1,
            started_at=func.coalesce(Job.started_at, t),
            worker_memory=None,  # the evidence of how a worker died is about this attempt's worker only
        )
    )
    return bool(getattr(res, "rowcount", 0) == 1)


def renew(session: Session, job_id: str, owner: str, lease_s: int, memory: dict[str, Any] | None = None) -> bool:
    extra = {"worker_memory": memory} if memory is not None else {}
    res = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.RUNNING, Job.lease_owner == owner)
        .values(lease_expires_at=now() + lease_s, **extra)
    )
    return bool(getattr(res, "rowcount", 0) == 1)


def fence(session: Session, job_id: str, owner: str, attempt: int, lease_s: int) -> bool:
    """True if ``owner`` still holds the lease of attempt ``attempt`` of a running job, renewing it. The UPDATE
    locks the job's row until the unit of work ends, so a takeover (itself an UPDATE) cannot slip in before
    what the caller writes in the same unit of work commits."""
    res = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.RUNNING, Job.lease_owner == owner, Job.attempt == attempt)
        .values(lease_expires_at=now() + lease_s)
    )
    return bool(getattr(res, "rowcount", 0) == 1)


def holds_lease(session: Session, job_id: str, owner: str) -> bool:
    return (
        session.scalar(
            select(Job.id).where(Job.id == job_id, Job.status == JobStatus.RUNNING, Job.lease_owner == owner)
        )
        is not None
    )


def expired_leases(session: Session, t: int) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.status == JobStatus.RUNNING, Job.lease_expires_at < t)))


def running_with_owner_prefix(session: Session, prefix: str) -> list[Job]:
    """Running jobs whose lease owner id starts with ``prefix`` (one worker process: ``host:pid:``)."""
    return list(
        session.scalars(
            select(Job).where(Job.status == JobStatus.RUNNING, Job.lease_owner.startswith(prefix, autoescape=True))
        )
    )


def stale_queued(session: Session, before: int) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.status == JobStatus.QUEUED, Job.dispatched_at < before)))


def recent_observations(session: Session, model_id: str, key: str, n: int = 5) -> list[float]:
    """``key`` as observed by the last ``n`` succeeded jobs on this model (stored in their ``observed``)."""
    rows = session.scalars(
        select(Job.observed)
        .where(Job.model == model_id, Job.status == JobStatus.SUCCEEDED)
        .order_by(Job.finished_at.desc())
        .limit(n)
    ).all()
    return [float(r[key]) for r in rows if r.get(key)]


def succeeded(session: Session, tenant_id: str, limit: int, model: str | None = None) -> list[Job]:
    """The tenant's newest ``limit`` succeeded jobs (only the one that made ``model`` when given)."""
    q = select(Job).where(Job.tenant_id == tenant_id, Job.status == JobStatus.SUCCEEDED)
    if model is not None:
        q = q.where(Job.fine_tuned_model == model)
    return list(session.scalars(q.order_by(Job.finished_at.desc(), Job.id.desc()).limit(limit)))


def active_count(session: Session, tenant_id: str) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(Job).where(Job.tenant_id == tenant_id, Job.status.in_(list(ACTIVE)))
        )
        or 0
    )


def running_count(session: Session, tenant_id: str) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(Job).where(Job.tenant_id == tenant_id, Job.status == JobStatus.RUNNING)
        )
        or 0
    )


def others_waiting(session: Session, tenant_id: str) -> bool:
    """Another tenant has a queued job."""
    return (
        session.scalar(select(Job.id).where(Job.status == JobStatus.QUEUED, Job.tenant_id != tenant_id).limit(1))
        is not None
    )


def queued_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Job).where(Job.status == JobStatus.QUEUED)) or 0)


def result_file_ids(session: Session, job_ids: list[str], kind: str) -> list[tuple[str, str]]:
    """(job id, file id) for each of ``job_ids`` whose ``kind`` artifact is published as a file of the job's
    tenant: one query whatever the number of jobs."""
    if not job_ids:
        return []
    rows = session.execute(
        select(Artifact.job_id, File.id)
        .join(Job, Job.id == Artifact.job_id)
        .join(File, and_(File.storage_key == Artifact.storage_key, File.tenant_id == Job.tenant_id))
        .where(Artifact.job_id.in_(job_ids), Artifact.kind == kind)
    )
    return [(job_id, file_id) for job_id, file_id in rows]
