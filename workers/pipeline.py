"""One job end to end: claim → train → realign/evaluate → export → succeed (or fail/cancel)."""

from __future__ import annotations

import logging

from core.db import session_scope
from core.errors import error_ref
from core.jobs import lifecycle
from core.jobs import service as jobs
from tuning.interfaces import Stopped
from workers.context import load_context
from workers.lease import SHUTTING_DOWN, Heartbeat, LeaseLost, worker_id
from workers.progress import DbProgress
from workers.stages.export import export
from workers.stages.realign import realign
from workers.stages.train import train

log = logging.getLogger("keel.worker")


def run_job(job_id: str) -> str:
    owner = worker_id()
    with session_scope() as s:
        if lifecycle.should_defer(s, job_id):
            log.info("job %s deferred: its tenant already runs its share while others wait", job_id)
            return "deferred"
        claimed = lifecycle.claim(s, job_id, owner)
    if not claimed:
        log.info("job %s is not claimable (duplicate delivery or already done); skipping", job_id)
        return "skipped"
    with Heartbeat(job_id, owner) as hb:
        try:
            return _run_claimed(job_id, owner, DbProgress(job_id, hb))
        except LeaseLost as exc:
            log.warning("job %s: %s; this attempt stops without writing more", job_id, exc)
            return "superseded"
        except BaseException as exc:
            if SHUTTING_DOWN.is_set():  # cold shutdown interrupted the job: hand it back, don't fail it
                _requeue(job_id, owner)
                raise
            if not isinstance(exc, Exception):
                raise
            ref = error_ref()  # the tenant sees a fixed message with this id; the traceback stays in this log
            log.exception("job %s failed (ref: %s)", job_id, ref)
            with session_scope() as s:
                lifecycle.fail(s, job_id, owner, "internal_error", f"{type(exc).__name__}: {exc}", ref=ref)
            return "failed"


def _requeue(job_id: str, owner: str) -> str:
    with session_scope() as s:
        lifecycle.requeue(s, job_id, owner, "The worker running the job is shutting down")
    log.info("job %s requeued (worker %s shutting down)", job_id, owner)
    return "requeued"


def _stopped(job_id: str, owner: str) -> str:
    if SHUTTING_DOWN.is_set():
        return _requeue(job_id, owner)
    with session_scope() as s:
        status = lifecycle.status(s, job_id)
    log.info("job %s stopped (%s)", job_id, status)
    if status == "running":  # running under another worker's lease: this attempt was superseded
        return "superseded"
    return "paused" if status == "paused" else "cancelled"


def _run_claimed(job_id: str, owner: str, progress: DbProgress) -> str:
    ctx = load_context(job_id, owner)
    with session_scope() as s:
        lifecycle.started(s, job_id, owner)
        progress.realign_s = jobs.realign_seconds(s, ctx.spec.model_id, ctx.spec.safety.get("realign", "auto"))
    raw = train(ctx, progress)
    if raw is None or progress.should_stop():
        return _stopped(job_id, owner)
    try:
        adapter, report = realign(ctx, raw, progress.should_stop)
    except Stopped:
        return _stopped(job_id, owner)
    if progress.should_stop():
        return _stopped(job_id, owner)
    if not report["passed"]:
        with session_scope() as s:
            lifecycle.fail(s, job_id, owner, "unsafe_model", report.get("reason", "no realignment setting passed"))
        return "failed"
    export(ctx, adapter, report)
    with session_scope() as s:
        ok = lifecycle.succeed(s, job_id, owner)
    return "succeeded" if ok else "cancelled"
