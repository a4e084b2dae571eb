"""The glue between the domains and what observes them: metrics, webhooks, log context. The domains announce
(core.signals) and this module listens, connected at import; the API (api.main) and the workers
(workers.celery_app) import it. When a job reaches a terminal status, wherever that happens (worker, reaper,
API cancel), ``job_terminal`` runs inside the unit of work that moved the job.

Metrics are counted and the job's last stage timed only once the move commits; webhook deliveries are
written in the same unit of work and sent after it commits (core.webhooks.service)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session

from core import signals
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


class DbCollector(Collector):
    """Jobs by status and base model, queue depth and the oldest queued job's age, read at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from sqlalchemy import func, select

        from core.db import session_scope
        from core.ids import now
        from core.jobs.models import Job

        jobs = GaugeMetricFamily("keel_jobs", "Jobs by status and base model", labels=["status", "model"])
        with session_scope() as s:
            for status, model, n in s.execute(
                select(Job.status, Job.model, func.count()).group_by(Job.status, Job.model)
            ):
                jobs.add_metric([str(status), str(model)], float(n))
            depth, oldest = s.execute(
                select(func.count(), func.min(Job.created_at)).where(Job.status == "queued")
            ).one()
        yield jobs
        yield GaugeMetricFamily("keel_queue_depth", "Queued jobs", value=float(depth))
        age = max(0, now() - int(oldest)) if oldest is not None else 0
        yield GaugeMetricFamily("keel_queue_oldest_age_seconds", "Age of the oldest queued job", value=float(age))


signals.job_finished.connect(job_terminal)
signals.report_saved.connect(report_saved)
signals.file_uploaded.connect(uploaded)
