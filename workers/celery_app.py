"""Celery worker entry point: `celery -A workers.celery_app worker -P solo -c 1` (one job per GPU).

Each worker process also runs the lease reaper thread, so a job whose worker died is requeued and
resumes from its last checkpoint without a separate beat process.
"""
from __future__ import annotations

import logging

from celery.signals import worker_ready, worker_shutdown

from core.queue import COMPUTE_MASKS, REAP, RUN_JOB, celery_app
from workers.lease import Reaper, reap

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


@app.task(name=REAP)
def reap_task() -> list[str]:
    return reap()


@worker_ready.connect
def _start_reaper(**_: object) -> None:
    global _reaper
    _reaper = Reaper()
    _reaper.start()
    log.info("lease reaper started")


@worker_shutdown.connect
def _stop_reaper(**_: object) -> None:
    if _reaper is not None:
        _reaper.stop()
