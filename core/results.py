"""Job results: adapter bundles and the harmfulness report."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.auth import Principal
from core.config import get_settings
from core.errors import InvalidRequest, NotFound, PermissionDenied
from core.orm import Artifact, Job, SafetyReport
from models_store import get_store

VARIANTS = {"realigned": "adapter", "raw": "adapter_raw"}


def artifact(session: Session, job_id: str, kind: str) -> Artifact | None:
    return session.scalar(select(Artifact).where(Artifact.job_id == job_id, Artifact.kind == kind))


def adapter_zip(session: Session, job: Job, variant: str, principal: Principal) -> Path:
    if variant not in VARIANTS:
        raise InvalidRequest("variant must be 'realigned' or 'raw'.", param="variant")
    if variant == "raw" and not principal.is_admin:
        raise PermissionDenied("Only admins can download the adapter as trained (variant=raw).", code="admin_required")
    row = artifact(session, job.id, VARIANTS[variant])
    if row is None:
        raise NotFound("adapter", job.id, param="fine_tuning_job_id") if job.status == "succeeded" else \
            InvalidRequest(f"Job '{job.id}' is {job.status}; the adapter is available once it has succeeded.",
                           param="fine_tuning_job_id", code="adapter_not_ready")
    return get_store(get_settings().store_dir).path(row.storage_key)


def report_object(session: Session, job: Job) -> dict:
    row = session.scalar(select(SafetyReport).where(SafetyReport.job_id == job.id))
    if row is None:
        raise InvalidRequest(f"Job '{job.id}' has no safety report yet (status {job.status}).",
                             param="fine_tuning_job_id", code="report_not_ready")
    return {"object": "fine_tuning.job.safety_report", "id": row.id, "fine_tuning_job_id": job.id,
            "created_at": row.created_at, "passed": row.passed, "mask_id": row.mask_id, **row.data}


def report_plot(session: Session, job: Job) -> Path:
    row = artifact(session, job.id, "report_plot")
    if row is None:
        raise InvalidRequest(f"Job '{job.id}' has no safety report plot.", param="fine_tuning_job_id",
                             code="report_not_ready")
    return get_store(get_settings().store_dir).path(row.storage_key)
