"""Job results: stored artifacts (adapter bundles, report plot) and the harmfulness report, keyed by job id.

Recording is idempotent (one row per job and kind), so a task that runs twice produces one result. Whether an
attempt may still record is the job's question (core/jobs/outputs.py fences before it calls here).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from core.files.service import register_result
from core.results import repository as repo
from core.results.models import Artifact, SafetyReport
from core.results.states import ArtifactKind


def find_artifact(session: Session, job_id: str, kind: ArtifactKind) -> Artifact | None:
    return repo.artifact(session, job_id, kind)


def record_artifact(
    session: Session,
    job_id: str,
    stored: tuple[str, str, int],
    kind: ArtifactKind,
    manifest: dict[str, Any] | None = None,
) -> Artifact:
    """The job's ``kind`` artifact: an earlier row of that kind wins, else ``stored`` = (key, sha256, bytes)."""
    row = repo.artifact(session, job_id, kind)
    if row is None:
        key, sha256, size = stored
        row = Artifact(job_id=job_id, kind=kind, storage_key=key, sha256=sha256, bytes=size, manifest=manifest or {})
        repo.add(session, row)
    return row


def publish(session: Session, job_id: str, tenant_id: str) -> None:
    """Expose the realigned adapter bundle as a file of the job's tenant (the job's ``result_files``)."""
    art = repo.artifact(session, job_id, ArtifactKind.ADAPTER)
    if art is not None:
        register_result(session, tenant_id, f"{job_id}-adapter.zip", art.storage_key, art.bytes, art.sha256)


def find_report(session: Session, job_id: str) -> SafetyReport | None:
    return repo.report(session, job_id)


def stored_report(session: Session, job_id: str) -> dict[str, Any] | None:
    row = repo.report(session, job_id)
    return None if row is None else {"passed": row.passed, **row.data}


def save_report(session: Session, job_id: str, report: dict[str, Any], mask_id: str | None) -> bool:
    """Store the job's safety report; the first one wins (True when this call stored it)."""
    if repo.report(session, job_id) is not None:
        return False
    repo.add(session, SafetyReport(job_id=job_id, mask_id=mask_id, passed=bool(report["passed"]), data=report))
    return True
