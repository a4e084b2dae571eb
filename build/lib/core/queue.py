"""The Celery application (producer and worker share it) and dispatch by task name.

Tasks carry ids only; the database row is the source of truth. Sends made inside a unit of work go out
only after it commits (and are dropped if it rolls back), so a worker never sees a row that isn't there.
The API never imports task code.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from celery import Celery
from sqlalchemy.orm import Session

from core.config import get_settings
from core.db import on_commit

RUN_JOB = "keel.run_job"
COMPUTE_MASKS = "keel.compute_masks"

log = logging.getLogger("keel.queue")


@lru_cache
def celery_app() -> Celery:
    s = get_settings()
    app = Celery("keel", broker=s.celery_broker)
    app.conf.update(
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=s.queue,
        # redelivery of unacked messages (Redis); the embedded SQLAlchemy transport takes no such option
        broker_transport_options={} if s.embedded_broker else {"visibility_timeout": s.visibility_timeout_s},
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        accept_content=["json"],
    )
    return app


def send(task: str, *args: str) -> None:
    celery_app().send_task(task, args=list(args), queue=get_settings().queue)


def _send_quietly(task: str, args: tuple[str, ...]) -> None:
    try:
        send(task, *args)
    except Exception:  # the row is committed; the reaper re-sends queued work nobody claimed
        log.exception("could not reach the broker for %s%s; the reaper will retry", task, args)


def send_after_commit(session: Session, task: str, *args: str) -> None:
    """Send ``task(*args)`` once ``session`` commits; nothing is sent if it rolls back."""
    on_commit(session, lambda: _send_quietly(task, args))


def backlog() -> int | None:
    """Messages waiting in the job queue, or None if the broker cannot say."""
    try:
        with celery_app().connection_for_write() as conn:
            declared = conn.default_channel.queue_declare(queue=get_settings().queue, passive=True)
            return int(declared.message_count)
    except Exception:
        log.debug("broker backlog unavailable", exc_info=True)
        return None
