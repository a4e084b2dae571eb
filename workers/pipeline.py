"""One job end to end: claim → train → realign/evaluate → export → succeed (or fail/cancel)."""
from __future__ import annotations

import logging

from sqlalchemy import update

from core import events
from core.db import session_scope
from core.jobs import model_name
from core.orm import Job, now
from workers.context import load_context
from workers.lease import Heartbeat, claim, worker_id
from workers.progress import DbProgress
from workers.realign import realign
from workers.stages import export, train

log = logging.getLogger("keel.worker")


def _finish(job_id: str, owner: str, status: str, message: str, level: str = "info", **values) -> bool:
    """Conditional terminal transition: only the lease owner of a still-running job may finish it."""
    with session_scope() as s:
        res = s.execute(update(Job).where(Job.id == job_id, Job.status == "running", Job.lease_owner == owner)
                        .values(status=status, finished_at=now(), estimated_finish=None, lease_expires_at=None,
                                **values))
        if res.rowcount == 1:
            events.add(s, job_id, message, level=level)
        return res.rowcount == 1


def _fail(job_id: str, owner: str, code: str, message: str) -> None:
    _finish(job_id, owner, "failed", f"Job failed: {message}", level="error",
            error={"code": code, "message": message, "param": None})


def run_job(job_id: str) -> str:
    owner = worker_id()
    if not claim(job_id, owner):
        log.info("job %s is not claimable (duplicate delivery or already done); skipping", job_id)
        return "skipped"
    with Heartbeat(job_id, owner) as hb:
        try:
            return _run_claimed(job_id, owner, DbProgress(job_id, hb))
        except Exception as exc:
            log.exception("job %s failed", job_id)
            _fail(job_id, owner, "internal_error", f"{type(exc).__name__}: {exc}")
            return "failed"


def _run_claimed(job_id: str, owner: str, progress: DbProgress) -> str:
    ctx = load_context(job_id)
    with session_scope() as s:
        attempt = s.get(Job, job_id).attempt
        events.add(s, job_id, f"Worker {owner} started the job (attempt {attempt})")
    raw = train(ctx, progress)
    if raw is None or progress.should_stop():
        log.info("job %s stopped (cancelled or lease lost)", job_id)
        return "cancelled"
    adapter, report = realign(ctx, raw)
    if progress.should_stop():
        return "cancelled"
    if not report["passed"]:
        _fail(job_id, owner, "unsafe_model", "The fine-tuned model could not be realigned within the safety "
              f"targets: {report.get('reason', 'no realignment setting passed')}")
        return "failed"
    export(ctx, adapter, report)
    name = model_name_for(job_id)
    ok = _finish(job_id, owner, "succeeded", f"The job has successfully completed; model {name}",
                 fine_tuned_model=name, progress=100.0, stage=None)
    return "succeeded" if ok else "cancelled"


def model_name_for(job_id: str) -> str:
    with session_scope() as s:
        return model_name(s.get(Job, job_id))
