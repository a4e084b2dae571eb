"""What happens when a job reaches a terminal status, wherever that happens (worker, reaper, API cancel):
core.jobs.repository.transition calls ``job_terminal`` inside the unit of work that moved the job.

Metrics are counted and the job's last stage timed only once the move commits; webhook deliveries are
written in the same unit of work and sent after it commits (core.webhooks.service)."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from core.db import on_commit
from core.jobs.states import TERMINAL

log = logging.getLogger("keel.jobs")


def job_terminal(session: Session, job_id: str, status: str) -> None:
    if status not in TERMINAL:
        return
    from core.jobs.models import Job
    from core.observability import metrics
    from core.results import repository as results_repo
    from core.webhooks.service import emit_job_event

    row = session.get(Job, job_id)
    model, tenant_id = (row.model, row.tenant_id) if row is not None else ("unknown", None)

    def counted() -> None:
        metrics.JOBS_FINISHED.labels(status=str(status), model=model).inc()
        metrics.stage_ended(job_id)
        log.info("job %s %s", job_id, status, extra={"job_id": job_id, "tenant_id": tenant_id, "status": status})

    on_commit(session, counted)
    if tenant_id is not None:
        report = results_repo.report(session, job_id) if status != "cancelled" else None
        emit_job_event(session, tenant_id, job_id, str(status), report.data if report is not None else None)


def stage_entered(job_id: str, stage: str) -> None:
    """A worker moved ``job_id`` to ``stage``: time the stage and tag this process's log lines with it."""
    from core.observability import logs, metrics

    metrics.stage_entered(job_id, stage)
    logs.bind(job_id=job_id, stage=str(stage))


def report_saved(session: Session, report: dict[str, object]) -> None:
    from core.observability import metrics

    on_commit(session, lambda: metrics.observe_report(dict(report)))


def trained(model: str, tokens_per_s: float | None) -> None:
    from core.observability import metrics

    if tokens_per_s:
        metrics.TOKENS_PER_S.labels(model=model).observe(float(tokens_per_s))


def uploaded(session: Session, size: int) -> None:
    from core.observability import metrics

    on_commit(session, lambda: metrics.UPLOAD_BYTES.inc(size))


def tenant_of(job_id: str) -> str | None:
    """The job's tenant, for a worker's log context; None when unknown (never fails the caller)."""
    from core.db import session_scope
    from core.jobs import repository as jobs_repo

    try:
        with session_scope() as s:
            row = jobs_repo.get(s, job_id)
            return row.tenant_id if row is not None else None
    except Exception:
        log.debug("no tenant for job %s", job_id, exc_info=True)
        return None
