"""The worker's side of observability, wired by Celery signals (workers.celery_app imports this module):
Keel's log format instead of Celery's, the job (and its tenant) on every line a task writes, and, with
KEEL_WORKER_METRICS_PORT, a /metrics endpoint of this host's metrics directory for Prometheus to scrape."""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery.signals import setup_logging, task_postrun, task_prerun, worker_ready, worker_shutdown

from core import hooks
from core.config import get_settings
from core.observability import logs

log = logging.getLogger("keel.worker")
_TOKENS: dict[str, Any] = {}


@setup_logging.connect
def _logging(**_: object) -> None:  # connected: Celery leaves the root logger to us
    logs.configure_from_settings()


@task_prerun.connect
def _bind(task_id: str | None = None, task: Any = None, args: Any = None, **_: object) -> None:
    from core.queue import RUN_JOB

    job_id = str(args[0]) if args and getattr(task, "name", None) == RUN_JOB else None
    token = logs._CTX.set({})
    if task_id:
        _TOKENS[task_id] = token
    if job_id:
        logs.bind(job_id=job_id, tenant_id=hooks.tenant_of(job_id))


@task_postrun.connect
def _unbind(task_id: str | None = None, **_: object) -> None:
    token = _TOKENS.pop(task_id or "", None)
    if token is not None:
        logs._CTX.reset(token)


@worker_ready.connect
def _serve_metrics(**_: object) -> None:
    port = get_settings().worker_metrics_port
    if port:
        from prometheus_client import start_http_server

        from core.observability.metrics import registry

        start_http_server(port, registry=registry())
        log.info("worker metrics on :%d/metrics", port)


class _Resender(threading.Thread):
    """Re-sends webhook deliveries whose task was lost (core.webhooks.delivery.resend_overdue)."""

    def __init__(self) -> None:
        super().__init__(name="keel-webhook-resender", daemon=True)
        self.stopped = threading.Event()

    def run(self) -> None:
        from core.webhooks.delivery import resend_overdue

        period = max(5.0, get_settings().reaper_interval_s)
        while not self.stopped.wait(period):
            try:
                if ids := resend_overdue():
                    log.warning("re-sent %d overdue webhook deliveries", len(ids))
            except Exception:
                log.exception("webhook resend sweep failed; trying again")


_RESENDER = _Resender()


@worker_ready.connect
def _start_resender(**_: object) -> None:
    _RESENDER.start()


@worker_shutdown.connect
def _forget_live_gauges(**_: object) -> None:
    from core.observability.metrics import process_exited

    _RESENDER.stopped.set()
    process_exited()
