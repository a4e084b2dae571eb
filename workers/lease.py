"""Job leases: claim with a conditional UPDATE (duplicate deliveries become no-ops), heartbeat, reaper."""
from __future__ import annotations

import logging
import os
import socket
import threading

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from core import events
from core.config import get_settings
from core.db import session_scope
from core.orm import Job, now
from core.queue import RUN_JOB, send

log = logging.getLogger("keel.worker")


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def claim(job_id: str, owner: str) -> bool:
    """Queued → running, or steal an expired lease. Exactly one concurrent caller wins."""
    t, lease = now(), get_settings().job_lease_s
    with session_scope() as s:
        res = s.execute(update(Job).where(
            Job.id == job_id,
            or_(Job.status == "queued", and_(Job.status == "running", Job.lease_expires_at < t)),
        ).values(status="running", lease_owner=owner, lease_expires_at=t + lease, attempt=Job.attempt + 1,
                 started_at=func.coalesce(Job.started_at, t)))
        return res.rowcount == 1


def renew(job_id: str, owner: str) -> bool:
    """Extend our lease; False once the job was cancelled, finished, or taken over."""
    t = now()
    with session_scope() as s:
        res = s.execute(update(Job).where(Job.id == job_id, Job.status == "running", Job.lease_owner == owner)
                        .values(lease_expires_at=t + get_settings().job_lease_s))
        return res.rowcount == 1


class Heartbeat:
    """Background lease renewal; ``lost`` is set when the job is no longer ours (e.g. cancelled)."""

    def __init__(self, job_id: str, owner: str) -> None:
        self.job_id, self.owner = job_id, owner
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(get_settings().heartbeat_s):
            try:
                if not renew(self.job_id, self.owner):
                    self.lost.set()
                    return
            except Exception:  # a DB blip must not kill the job; the lease has slack
                log.exception("heartbeat failed for %s", self.job_id)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _requeue_expired(s: Session, t: int) -> list[str]:
    rows = s.scalars(select(Job).where(Job.status == "running", Job.lease_expires_at < t)).all()
    out = []
    for job in rows:
        if job.attempt >= get_settings().max_attempts:
            job.status, job.finished_at = "failed", t
            job.error = {"code": "worker_lost", "message": f"Worker lost {job.attempt} times; giving up.", "param": None}
            events.add(s, job.id, job.error["message"], level="error")
            continue
        owner = job.lease_owner or "unknown"
        job.status, job.lease_owner, job.dispatched_at = "queued", None, t
        events.add(s, job.id, f"Worker {owner} stopped heartbeating; job requeued "
                   f"(attempt {job.attempt + 1} will resume from the last checkpoint)", level="warn")
        out.append(job.id)
    return out


def reap() -> list[str]:
    """Requeue jobs whose worker died and re-send queued jobs nobody picked up; returns re-sent ids."""
    t = now()
    with session_scope() as s:
        ids = _requeue_expired(s, t)
        stale = s.scalars(select(Job).where(Job.status == "queued",
                                            Job.dispatched_at < t - get_settings().requeue_after_s)).all()
        for job in stale:
            job.dispatched_at = t
            ids.append(job.id)
    for job_id in ids:
        send(RUN_JOB, job_id)
    return ids


class Reaper(threading.Thread):
    """Runs ``reap`` periodically inside each worker process; conditional updates make it safe to run many."""

    def __init__(self) -> None:
        super().__init__(name="keel-reaper", daemon=True)
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(get_settings().reaper_interval_s):
            try:
                reap()
            except Exception:
                log.exception("reaper pass failed")

    def stop(self) -> None:
        self._stop.set()
