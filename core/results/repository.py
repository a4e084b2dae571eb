"""Queries on job artifacts and safety reports."""

from __future__ import annotations

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from core.files.models import File
from core.jobs.models import Job
from core.results.models import Artifact, SafetyReport


def artifact(session: Session, job_id: str, kind: str) -> Artifact | None:
    return session.scalar(select(Artifact).where(Artifact.job_id == job_id, Artifact.kind == kind))


def report(session: Session, job_id: str) -> SafetyReport | None:
    return session.scalar(select(SafetyReport).where(SafetyReport.job_id == job_id))


def add(session: Session, row: Artifact | SafetyReport) -> None:
    session.add(row)
    session.flush()


def artifact_file_ids(session: Session, job_ids: list[str], kind: str) -> list[tuple[str, str]]:
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


def referenced_keys(session: Session, keys: list[str]) -> set[str]:
    """Those of ``keys`` that a row names as its stored bytes."""
    return set(session.scalars(select(Artifact.storage_key).where(Artifact.storage_key.in_(keys))))
