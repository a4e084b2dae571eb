"""Job leases from the worker's side: who we are, heartbeat renewal, and the periodic reaper."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core import janitor
from core.base_models import service as models
from core.config import get_settings
from core.db import session_scope
from core.jobs import lifecycle
from core.queue import backlog

log = logging.getLogger("keel.worker")

# Set when the worker process begins to shut down (warm or cold): the running job stops at its next step
# and is handed back to the queue instead of being failed, to resume from its last checkpoint.
SHUTTING_DOWN = threading.Event()


class LeaseLost(Exception):
    """Our attempt no longer holds the job's lease (another worker took it over, or it was cancelled or
    finished): nothing more may be written for the job."""


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


Renew = Callable[[Any, str, str], bool]  # (session, id, owner) -> still ours


def _kib(path: str, key: str) -> int | None:
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _cgroup() -> tuple[int, int] | None:
    """(limit, used) bytes of this process's cgroup v2, when it has a memory limit."""
    root = Path("/sys/fs/cgroup")
    try:
        limit = (root / "memory.max").read_text().strip()
        used = int((root / "memory.current").read_text().strip())
    except (OSError, ValueError):
        return None
    return (int(limit), used) if limit.isdigit() else None


def memory_sample() -> dict[str, int | None]:
    """This worker's resident memory and the memory it can use (its cgroup's limit, else the host's), as the
    heartbeat records it on the job: the evidence for ``out_of_memory`` if the worker dies."""
    total = _kib("/proc/meminfo", "MemTotal")
    available = _kib("/proc/meminfo", "MemAvailable")
    limit, used = _cgroup() or (total, (total - available) if total and available is not None else None)
    return {
        "rss_bytes": _kib("/proc/self/status", "VmRSS"),
        "peak_rss_bytes": _kib("/proc/self/status", "VmHWM"),
        "limit_bytes": limit,
        "used_bytes": used,
    }


def renew_job(session: Any, job_id: str, owner: str) -> bool:
    return lifecycle.renew(session, job_id, owner, memory_sample())


class Heartbeat:
    """Background lease renewal of a job (or, with ``renew``, of another leased row such as a mask version);
    ``lost`` is set when it is no longer ours (cancelled, finished or taken over)."""

    def __init__(self, job_id: str, owner: str, renew: Renew = renew_job) -> None:
        self.job_id, self.owner, self._renew = job_id, owner, renew
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(get_settings().heartbeat_s):
            try:
                with session_scope() as s:
                    ours = self._renew(s, self.job_id, self.owner)
                if not ours:
                    self.lost.set()
                    return
            except Exception:  # a DB blip must not kill the job; the lease has slack
                log.exception("heartbeat failed for %s", self.job_id)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def reap() -> list[str]:
    """Requeue jobs (and mask versions) whose worker died and re-send queued jobs nobody picked up; returns
    re-sent job ids."""
    pending = backlog()
    with session_scope() as s:
        masks = models.reap_masks(s)
        ids = lifecycle.reap(s, pending)
    if masks:
        log.warning("mask versions %s were left running by a lost worker; queued again", masks)
    return ids


def sweep_store() -> list[str]:
    """Remove store objects no row references, once older than the janitor's grace age (core.janitor)."""
    with session_scope() as s:
        return janitor.sweep(s)


class Reaper(threading.Thread):
    """Runs ``reap`` periodically inside each worker process, and the store janitor every
    ``janitor_interval_s``; conditional updates and idempotent deletes make it safe to run many."""

    def __init__(self) -> None:
        super().__init__(name="keel-reaper", daemon=True)
        self._stop = threading.Event()
        self._last_sweep = time.monotonic()

    def run(self) -> None:
        while not self._stop.wait(get_settings().reaper_interval_s):
            self.run_once()

    def run_once(self) -> None:
        try:
            reap()
        except Exception:
            log.exception("reaper pass failed")
        if time.monotonic() - self._last_sweep < get_settings().janitor_interval_s:
            return
        self._last_sweep = time.monotonic()
        try:
            sweep_store()
        except Exception:
            log.exception("store janitor pass failed")

    def stop(self) -> None:
        self._stop.set()
