"""Queries on job artifacts and safety reports."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.results.models import Artifact, SafetyReport


def artifact(session: Session, job_id: str, kind: str) -> Artifact | None:
    return session.scalar(select(Artifact).where(Artifact.job_id == job_id, Artifact.kind == kind))


def report(session: Session, job_id: str) -> SafetyReport | None:
    return session.scalar(select(SafetyReport).where(SafetyReport.job_id == job_id))


def add(session: Session, row: Artifact | SafetyReport) -> None:
    session.add(row)
    session.flush()


def referenced_keys(session: Session, keys: list[str]) -> set[str]:
    """Those of ``keys`` that a row names as its stored bytes."""
    return set(session.scalars(select(Artifact.storage_key).where(Artifact.storage_key.in_(keys))))
