"""Job results: stored artifacts (adapter bundles, report plot) and the harmfulness report.

Recording is idempotent (one row per job and kind), so a task that runs twice produces one result.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from core.config import get_settings
from core.errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from core.files.service import register_result
from core.jobs import repository as jobs_repo
from core.jobs.models import Job
from core.jobs.states import JobStatus
from core.observability import hooks
from core.results import repository as repo
from core.results.models import Artifact, SafetyReport
from core.results.states import VARIANTS, ArtifactKind
from core.tenants.service import Principal


def find_artifact(session: Session, job_id: str, kind: ArtifactKind) -> Artifact | None:
    return repo.artifact(session, job_id, kind)


def _fenced(session: Session, job_id: str, owner: str, attempt: int) -> bool:
    return jobs_repo.fence(session, job_id, owner, attempt, get_settings().job_lease_s)


def record_artifact(
    session: Session,
    job_id: str,
    owner: str,
    attempt: int,
    stored: tuple[str, str, int],
    kind: ArtifactKind,
    manifest: dict[str, Any] | None = None,
) -> Artifact | None:
    """Record the ``kind`` artifact stored as ``stored`` = (key, sha256, bytes) by attempt ``attempt`` of
    ``owner``. None if that attempt no longer holds the job's lease (taken over, cancelled, finished): its
    bytes are the caller's to remove. An earlier attempt's row of the same kind wins (one row per kind)."""
    if not _fenced(session, job_id, owner, attempt):
        return None
    row = repo.artifact(session, job_id, kind)
    if row is None:
        key, sha256, size = stored
        row = Artifact(job_id=job_id, kind=kind, storage_key=key, sha256=sha256, bytes=size, manifest=manifest or {})
        repo.add(session, row)
    return row


def adapter_artifact(session: Session, job: Job, variant: str, principal: Principal) -> Artifact:
    if variant not in VARIANTS:
        raise InvalidRequest("variant must be 'realigned' or 'raw'.", param="variant")
    if variant == "raw" and not principal.is_admin:
        raise PermissionDenied("Only admins can download the adapter as trained (variant=raw).", code="admin_required")
    row = repo.artifact(session, job.id, VARIANTS[variant])
    if row is None:
        if job.status == JobStatus.SUCCEEDED:
            raise NotFound("adapter", job.id, param="fine_tuning_job_id")
        raise Conflict(
            f"Job '{job.id}' is {job.status}; the adapter is available once it has succeeded.",
            param="fine_tuning_job_id",
            code="adapter_not_ready",
        )
    return row


def publish(session: Session, job: Job) -> None:
    """Expose the realigned adapter bundle as a file of the job's tenant (the job's ``result_files``)."""
    art = repo.artifact(session, job.id, ArtifactKind.ADAPTER)
    if art is not None:
        register_result(session, job.tenant_id, f"{job.id}-adapter.zip", art.storage_key, art.bytes, art.sha256)


def result_files(session: Session, jobs: list[Job]) -> dict[str, list[str]]:
    """File ids of the published adapter bundle of each succeeded job among ``jobs``, in one query."""
    done = [j.id for j in jobs if j.status == JobStatus.SUCCEEDED]
    out: dict[str, list[str]] = {}
    for job_id, file_id in repo.artifact_file_ids(session, done, ArtifactKind.ADAPTER):
        out.setdefault(job_id, []).append(file_id)
    return out


def stored_report(session: Session, job_id: str) -> dict[str, Any] | None:
    row = repo.report(session, job_id)
    return None if row is None else {"passed": row.passed, **row.data}


def save_report(
    session: Session, job_id: str, owner: str, attempt: int, report: dict[str, Any], mask_id: str | None
) -> bool:
    """Store the job's safety report (the first one wins); False if ``owner``'s attempt lost the lease."""
    if not _fenced(session, job_id, owner, attempt):
        return False
    if repo.report(session, job_id) is None:
        repo.add(session, SafetyReport(job_id=job_id, mask_id=mask_id, passed=bool(report["passed"]), data=report))
        hooks.report_saved(session, report)
    return True


def report_for(session: Session, job: Job) -> SafetyReport:
    row = repo.report(session, job.id)
    if row is None:
        raise Conflict(
            f"Job '{job.id}' has no safety report yet (status {job.status}).",
            param="fine_tuning_job_id",
            code="report_not_ready",
        )
    return row


def report_plot(session: Session, job: Job) -> Artifact:
    row = repo.artifact(session, job.id, ArtifactKind.REPORT_PLOT)
    if row is None:
        raise Conflict(
            f"Job '{job.id}' has no safety report plot.", param="fine_tuning_job_id", code="report_not_ready"
        )
    return row
