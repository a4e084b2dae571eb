"""What a job produced, seen from the job: an attempt records its artifacts and its safety report only while it
holds the job's lease (fenced by attempt), and the API reads them back with the job's status in its errors.
The rows themselves are the results domain's, which knows nothing of jobs."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from core import signals
from core.errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from core.jobs import repository as jobs_repo
from core.jobs.models import Job
from core.jobs.service import fenced
from core.jobs.states import JobStatus
from core.results import service as results
from core.results.models import Artifact, SafetyReport
from core.results.states import VARIANTS, ArtifactKind
from core.tenants.service import Principal


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
    if not fenced(session, job_id, owner, attempt):
        return None
    return results.record_artifact(session, job_id, stored, kind, manifest)


def save_report(
    session: Session, job_id: str, owner: str, attempt: int, report: dict[str, Any], mask_id: str | None
) -> bool:
    """Store the job's safety report (the first one wins); False if ``owner``'s attempt lost the lease."""
    if not fenced(session, job_id, owner, attempt):
        return False
    if results.save_report(session, job_id, report, mask_id):
        signals.report_saved.send(session, report)
    return True


def adapter_artifact(session: Session, job: Job, variant: str, principal: Principal) -> Artifact:
    if variant not in VARIANTS:
        raise InvalidRequest("variant must be 'realigned' or 'raw'.", param="variant")
    if variant == "raw" and not principal.is_admin:
        raise PermissionDenied("Only admins can download the adapter as trained (variant=raw).", code="admin_required")
    row = results.find_artifact(session, job.id, VARIANTS[variant])
    if row is None:
        if job.status == JobStatus.SUCCEEDED:
            raise NotFound("adapter", job.id, param="fine_tuning_job_id")
        raise Conflict(
            f"Job '{job.id}' is {job.status}; the adapter is available once it has succeeded.",
            param="fine_tuning_job_id",
            code="adapter_not_ready",
        )
    return row


def result_files(session: Session, jobs: list[Job]) -> dict[str, list[str]]:
    """File ids of the published adapter bundle of each succeeded job among ``jobs``, in one query."""
    done = [j.id for j in jobs if j.status == JobStatus.SUCCEEDED]
    out: dict[str, list[str]] = {}
    for job_id, file_id in jobs_repo.result_file_ids(session, done, ArtifactKind.ADAPTER):
        out.setdefault(job_id, []).append(file_id)
    return out


def report_for(session: Session, job: Job) -> SafetyReport:
    row = results.find_report(session, job.id)
    if row is None:
        raise Conflict(
            f"Job '{job.id}' has no safety report yet (status {job.status}).",
            param="fine_tuning_job_id",
            code="report_not_ready",
        )
    return row


def report_plot(session: Session, job: Job) -> Artifact:
    row = results.find_artifact(session, job.id, ArtifactKind.REPORT_PLOT)
    if row is None:
        raise Conflict(
            f"Job '{job.id}' has no safety report plot.", param="fine_tuning_job_id", code="report_not_ready"
        )
    return row
