"""tuning.Progress over the database: throttled metrics events, job progress/ETA, checkpoints, cancellation."""
from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from core import events
from core.config import get_settings
from core.db import session_scope
from core.orm import Checkpoint, Job, now
from workers.lease import Heartbeat

TRAIN_SHARE = 80.0  # percent of the progress bar given to training; realignment/eval/export share the rest


class DbProgress:
    def __init__(self, job_id: str, heartbeat: Heartbeat) -> None:
        self.job_id, self.heartbeat = job_id, heartbeat
        self._last_write = 0.0
        self._last_poll = 0.0
        self._stopped = False
        self.tokens_per_s: float | None = None

    def on_step(self, step: int, total_steps: int, metrics: dict[str, Any]) -> None:
        self.tokens_per_s = metrics.get("tokens_per_s") or self.tokens_per_s
        t = time.monotonic()
        if step != total_steps and t - self._last_write < get_settings().metrics_every_s:
            return
        self._last_write = t
        remaining = total_steps - step
        with session_scope() as s:
            job = s.get(Job, self.job_id)
            job.progress = TRAIN_SHARE * step / max(total_steps, 1)
            job.trained_tokens = int(metrics.get("trained_tokens", 0)) or job.trained_tokens
            rate = metrics.get("steps_per_s") or 0
            job.estimated_finish = now() + int(remaining / rate) if rate else job.estimated_finish
            data = {"step": step, "total_steps": total_steps,
                    **{k: (round(v, 6) if isinstance(v, float) else v) for k, v in metrics.items()}}
            events.add(s, self.job_id, f"Step {step}/{total_steps}: training loss={metrics.get('loss', 0):.4f}",
                       type="metrics", data=data)

    def on_checkpoint(self, step: int, path: str, metrics: dict[str, Any]) -> None:
        with session_scope() as s:
            exists = s.scalar(select(Checkpoint.id).where(Checkpoint.job_id == self.job_id,
                                                          Checkpoint.step_number == step))
            if exists is None:
                s.add(Checkpoint(job_id=self.job_id, step_number=step, path=path,
                                 metrics={"step": step, "train_loss": metrics.get("loss")}))
                events.add(s, self.job_id, f"Checkpoint saved at step {step}")

    def should_stop(self) -> bool:
        if self._stopped or self.heartbeat.lost.is_set():
            self._stopped = True
            return True
        t = time.monotonic()
        if t - self._last_poll >= 1.0:  # cancellation is seen within about a second
            self._last_poll = t
            with session_scope() as s:
                self._stopped = s.scalar(select(Job.status).where(Job.id == self.job_id)) != "running"
        return self._stopped
