"""tuning's Progress over the database: throttled metrics events, progress/ETA, checkpoints, cancellation."""

from __future__ import annotations

import time
from typing import Any

from core.config import get_settings
from core.db import session_scope
from core.events import service as events
from core.jobs import lifecycle
from core.jobs import service as jobs
from workers.lease import SHUTTING_DOWN, Heartbeat


class DbProgress:
    def __init__(self, job_id: str, heartbeat: Heartbeat) -> None:
        self.job_id, self.heartbeat = job_id, heartbeat
        self._last_write = 0.0
        self._last_poll = 0.0
        self._started = time.monotonic()
        self._first_step: tuple[int, float] | None = None
        self.realign_s: float | None = None  # core.jobs.service.realign_seconds, set once the job is loaded
        self._stopped = False
        self.tokens_per_s: float | None = None
        self._job_started: int | None = None
        self.attempt: int | None = None  # set by the training stage: steps and checkpoints are fenced by it

    def _fenced(self, session: Any) -> bool:
        """Our attempt still holds the job (checked in the unit of work that writes); a superseded attempt's
        steps and checkpoints are dropped, and it stops."""
        if self.attempt is None or jobs.fenced(session, self.job_id, self.heartbeat.owner, self.attempt):
            return True
        self._stopped = True
        return False

    def _eta(self, step: int, total: int) -> float | None:
        """Seconds to the job's end: training left at the step rate seen in this attempt, plus the realignment
        stage as long as it took on this model's recent jobs (without history: as long as training)."""
        t = time.monotonic()
        if self._first_step is None:
            self._first_step = (step, t)
            return None
        done, elapsed = step - self._first_step[0], t - self._first_step[1]
        if done <= 0 or elapsed <= 0:
            return None
        per_step = elapsed / done
        stage = self.realign_s if self.realign_s is not None else total * per_step
        return (total - step) * per_step + stage

    def on_step(self, step: int, total_steps: int, metrics: dict[str, Any]) -> None:
        self.tokens_per_s = metrics.get("tokens_per_s") or self.tokens_per_s
        eta = self._eta(step, total_steps)
        t = time.monotonic()
        if step != total_steps and t - self._last_write < get_settings().metrics_every_s:
            return
        self._last_write = t
        with session_scope() as s:
            if self._fenced(s):
                lifecycle.record_step(s, self.job_id, step, total_steps, metrics, eta)

    def on_checkpoint(self, step: int, path: str, metrics: dict[str, Any]) -> None:
        with session_scope() as s:
            if self._fenced(s):
                events.record_checkpoint(s, self.job_id, step, path, {"step": step, "train_loss": metrics.get("loss")})

    def should_stop(self) -> bool:
        if self._stopped or self.heartbeat.lost.is_set() or SHUTTING_DOWN.is_set():
            self._stopped = True
            return True
        t = time.monotonic()
        if t - self._last_poll >= 1.0:  # cancellation is seen within about a second
            self._last_poll = t
            with session_scope() as s:
                self._stopped = self._timed_out(s) or not lifecycle.holds_lease(s, self.job_id, self.heartbeat.owner)
        return self._stopped

    def _timed_out(self, session: Any) -> bool:
        """Past KEEL_MAX_JOB_WALL_S since the job first started: it fails with ``timeout`` (by us, only while
        we hold it) and this attempt stops, freeing the worker."""
        limit = get_settings().max_job_wall_s
        if limit <= 0:
            return False
        if self._job_started is None:
            self._job_started = jobs.started_at(session, self.job_id) or int(time.time())
        if time.time() - self._job_started <= limit:
            return False
        msg = f"The job ran longer than the {limit:g} s this service allows (KEEL_MAX_JOB_WALL_S)."
        lifecycle.fail(session, self.job_id, self.heartbeat.owner, "timeout", msg)
        return True
