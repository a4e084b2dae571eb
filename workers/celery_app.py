"""Celery worker entry point: `celery -A workers.celery_app worker -P solo -c 1` (one job per GPU).

Tasks take ids only. Each worker process also runs the lease reaper thread, so a job whose worker died is
requeued and resumes from its last checkpoint without a separate beat process.
"""

from __future__ import annotations

import logging
import signal
from types import FrameType

from celery.signals import worker_ready, worker_shutdown, worker_shutting_down

from core.queue import COMPUTE_MASKS, RUN_JOB, celery_app
from core.webhooks.service import DELIVER_WEBHOOK
from workers import observability  # noqa: F401 (connects the logging/metrics signals)
from workers.lease import SHUTTING_DOWN, Reaper

app = celery_app()
log = logging.getLogger("keel.worker")
_reaper: Reaper | None = None


@app.task(name=RUN_JOB, acks_late=True)
def run_job(job_id: str) -> str:
    from workers.pipeline import run_job as run

    return run(job_id)


@app.task(name=COMPUTE_MASKS, acks_late=True)
def compute_masks(mask_id: str) -> str:
    from workers.masks import compute

    return compute(mask_id)


@app.task(name=DELIVER_WEBHOOK, acks_late=True)
def deliver_webhook(delivery_id: str) -> str:
    from core.webhooks.delivery import deliver

    return deliver(delivery_id)


def _flag_first(signum: int) -> None:
    """Wrap Celery's handler for ``signum`` so our shutdown flag is set before it runs: a cold shutdown's
    handler cancels the running task (raising inside it) before it announces the shutdown."""
    celery_handler = signal.getsignal(signum)

    def handler(sig: int, frame: FrameType | None) -> None:
        SHUTTING_DOWN.set()
        if callable(celery_handler):
            celery_handler(sig, frame)

    signal.signal(signum, handler)


@worker_ready.connect
def _start_reaper(**_: object) -> None:
    global _reaper
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        _flag_first(signum)
    _reaper = Reaper()
    _reaper.start()
    log.info("lease reaper started")


@worker_shutting_down.connect
def _shutting_down(**_: object) -> None:
    SHUTTING_DOWN.set()  # the running job stops at its next step and is requeued (workers.pipeline)


@worker_shutdown.connect
def _stop_reaper(**_: object) -> None:
    if _reaper is not None:
        _reaper.stop()
