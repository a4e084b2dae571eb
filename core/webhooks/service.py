"""Webhook endpoints of a tenant, and the job events they receive.

Events are OpenAI's fine-tuning webhook events (``fine_tuning.job.succeeded`` / ``.failed`` / ``.cancelled``,
payload ``{"id", "object": "event", "created_at", "type", "data": {"id": <job id>}}``) plus Keel's
``fine_tuning.job.realigned``, sent before the terminal event when the job has a safety report, whose
``data.safety`` summarises it. Emission happens inside the unit of work that moves the job to its terminal
status: the delivery rows commit with it, and their delivery tasks are sent only after that commit, so a
slow or dead receiver never holds a job up and a rolled-back transition sends nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from core.config import get_settings
from core.db import on_commit
from core.errors import InvalidRequest, NotFound
from core.ids import new_id, now
from core.webhooks import repository as repo
from core.webhooks.models import WebhookDelivery, WebhookEndpoint
from core.webhooks.signing import new_secret
from core.webhooks.urls import check

DELIVER_WEBHOOK = "keel.deliver_webhook"
REALIGNED = "fine_tuning.job.realigned"
EVENT_TYPES = ("fine_tuning.job.succeeded", "fine_tuning.job.failed", "fine_tuning.job.cancelled", REALIGNED)
MAX_ENDPOINTS = 16

log = logging.getLogger("keel.webhooks")


def _events(events: list[str] | None) -> list[str]:
    unknown = sorted(set(events or []) - set(EVENT_TYPES))
    if unknown:
        raise InvalidRequest(f"Unknown event type {unknown[0]!r}; one of {', '.join(EVENT_TYPES)}.", param="events")
    return sorted(set(events or []))


def create_endpoint(
    session: Session, tenant_id: str, url: str, events: list[str] | None, description: str | None
) -> WebhookEndpoint:
    check(url, get_settings().webhooks_allow_private)
    if repo.count(session, tenant_id) >= MAX_ENDPOINTS:
        raise InvalidRequest(f"At most {MAX_ENDPOINTS} webhook endpoints per organization.", code="too_many")
    row = WebhookEndpoint(
        tenant_id=tenant_id, url=url, events=_events(events), description=description, secret=new_secret()
    )
    repo.add(session, row)
    return row


def get_endpoint(session: Session, tenant_id: str, endpoint_id: str) -> WebhookEndpoint:
    row = repo.endpoint(session, tenant_id, endpoint_id)
    if row is None:
        raise NotFound("webhook endpoint", endpoint_id, param="endpoint_id")
    return row


def list_endpoints(session: Session, tenant_id: str) -> list[WebhookEndpoint]:
    return repo.endpoints(session, tenant_id)


def delete_endpoint(session: Session, tenant_id: str, endpoint_id: str) -> WebhookEndpoint:
    row = get_endpoint(session, tenant_id, endpoint_id)
    row.deleted_at = now()  # soft: its delivery log stays; pending deliveries stop
    return row


def rotate_secret(session: Session, tenant_id: str, endpoint_id: str) -> WebhookEndpoint:
    """A new signing secret; the old one keeps signing (alongside) for KEEL_WEBHOOK_SECRET_GRACE_S."""
    row = get_endpoint(session, tenant_id, endpoint_id)
    row.previous_secret, row.previous_expires_at = row.secret, now() + get_settings().webhook_secret_grace_s
    row.secret = new_secret()
    return row


def signing_secrets(row: WebhookEndpoint, t: int) -> list[str]:
    keep_old = row.previous_secret and row.previous_expires_at and row.previous_expires_at > t
    return [row.secret, *([row.previous_secret] if keep_old and row.previous_secret else [])]


def list_deliveries(
    session: Session, tenant_id: str, endpoint_id: str, after: str | None, limit: int
) -> tuple[list[WebhookDelivery], bool]:
    get_endpoint(session, tenant_id, endpoint_id)
    cursor = repo.delivery(session, after) if after else None
    if after and (cursor is None or cursor.endpoint_id != endpoint_id):
        raise InvalidRequest(f"No delivery found with id '{after}'.", param="after")
    return repo.deliveries(session, endpoint_id, cursor, limit)


def _payload(event_type: str, job_id: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": new_id("evt_"),
        "object": "event",
        "created_at": now(),
        "type": event_type,
        "data": {"id": job_id, **(extra or {})},
    }


def safety_summary(report: dict[str, Any]) -> dict[str, Any]:
    keys = ("hs", "fa", "over_refusal")
    return {
        "method": report.get("method"),
        "passed": bool(report.get("passed")),
        "reason": report.get("reason"),
        "before": {k: (report.get("before") or {}).get(k) for k in keys},
        "after": {k: (report.get("after") or {}).get(k) for k in keys},
    }


def emit_job_event(session: Session, tenant_id: str, job_id: str, status: str, report: dict[str, Any] | None) -> int:
    """Queue the events of a job that just reached ``status`` for every subscribed endpoint of its tenant
    (sent after the commit). Returns the number of deliveries queued."""
    endpoints = repo.endpoints(session, tenant_id)
    if not endpoints:
        return 0
    events = [_payload(REALIGNED, job_id, {"safety": safety_summary(report)})] if report else []
    events.append(_payload(f"fine_tuning.job.{status}", job_id))
    queued = []
    for event in events:
        for ep in endpoints:
            if ep.events and event["type"] not in ep.events:
                continue
            row = WebhookDelivery(
                endpoint_id=ep.id, event_id=event["id"], event_type=event["type"], payload=event, next_attempt_at=now()
            )
            repo.add(session, row)
            queued.append(row.id)
    on_commit(session, lambda: _send_all(queued))
    return len(queued)


def _send_all(delivery_ids: list[str]) -> None:
    for delivery_id in delivery_ids:
        send_delivery(delivery_id)


def send_delivery(delivery_id: str, countdown: float | None = None) -> None:
    from core.queue import celery_app

    try:
        celery_app().send_task(DELIVER_WEBHOOK, args=[delivery_id], queue=get_settings().queue, countdown=countdown)
    except Exception:  # the row stays pending; a worker's resend_overdue() sends it again
        log.exception("could not reach the broker for webhook delivery %s", delivery_id)
