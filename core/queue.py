"""The Celery application (producer and worker share it) and job dispatch by task name.

Tasks carry ids only; the database row is the source of truth. The API never imports task code.
"""
from __future__ import annotations

from functools import lru_cache

from celery import Celery

from core.config import get_settings

RUN_JOB = "keel.run_job"
COMPUTE_MASKS = "keel.compute_masks"
REAP = "keel.reap"


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
