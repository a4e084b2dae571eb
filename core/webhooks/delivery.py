"""One delivery attempt (the Celery task ``keel.deliver_webhook`` runs it): sign, POST, record, and on a
failure schedule the next attempt with exponential backoff until KEEL_WEBHOOK_MAX_ATTEMPTS is reached.

The HTTP call is made outside any database transaction. Every attempt of a delivery carries the same
``webhook-id`` (receivers deduplicate on it) and a fresh timestamp and signature.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import httpx

from core.config import get_settings
from core.db import session_scope
from core.errors import InvalidRequest
from core.ids import now
from core.observability import logs
from core.webhooks import repository as repo
from core.webhooks.models import WebhookEndpoint
from core.webhooks.service import send_delivery, signing_secrets
from core.webhooks.signing import headers
from core.webhooks.urls import check

log = logging.getLogger("keel.webhooks")


@dataclass
class _Attempt:
    url: str
    body: bytes
    headers: dict[str, str]


def _prepare(delivery_id: str) -> _Attempt | str:
    """What to send, or the delivery's final status when there is nothing to do."""
    with session_scope() as s:
        d = repo.delivery(s, delivery_id)
        if d is None or d.status != "pending":
            return d.status if d is not None else "missing"
        ep = s.get(WebhookEndpoint, d.endpoint_id)
        assert ep is not None
        logs.bind(tenant_id=ep.tenant_id, job_id=str(d.payload.get("data", {}).get("id")))
        if ep.deleted_at is not None:
            d.status, d.last_error = "failed", "endpoint deleted"
            return "failed"
        body = json.dumps(d.payload, separators=(",", ":"), sort_keys=True).encode()
        t = now()
        return _Attempt(ep.url, body, headers(signing_secrets(ep, t), d.id, t, body))


def _post(attempt: _Attempt) -> tuple[int | None, str | None]:
    s = get_settings()
    try:
        check(attempt.url, s.webhooks_allow_private)  # again: the name may resolve elsewhere now
        r = httpx.post(
            attempt.url, content=attempt.body, headers=attempt.headers, timeout=s.webhook_timeout_s,
            follow_redirects=False,
        )  # fmt: skip
    except InvalidRequest as exc:
        return None, exc.message
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"
    return r.status_code, None if 200 <= r.status_code < 300 else f"HTTP {r.status_code}: {r.text[:200]}"


def backoff_s(attempts: int) -> float:
    s = get_settings()
    return float(min(s.webhook_backoff_max_s, s.webhook_backoff_s * 2 ** max(0, attempts - 1)))


def _record(delivery_id: str, code: int | None, error: str | None) -> tuple[str, float | None]:
    s = get_settings()
    with session_scope() as sess:
        d = repo.delivery(sess, delivery_id)
        if d is None or d.status != "pending":
            return (d.status if d else "missing"), None
        d.attempts += 1
        d.last_status_code, d.last_error = code, error
        if error is None:
            d.status, d.delivered_at, d.next_attempt_at = "delivered", now(), None
            return "delivered", None
        if d.attempts >= s.webhook_max_attempts:
            d.status, d.next_attempt_at = "failed", None
            return "failed", None
        delay = backoff_s(d.attempts)
        d.next_attempt_at = now() + int(delay)
        return "retry", delay


def deliver(delivery_id: str) -> str:
    """Make one attempt; returns delivered / retry / failed (or the final status it already had)."""
    from core.observability.metrics import WEBHOOK_DELIVERIES

    with logs.scope(request_id=None):
        prepared = _prepare(delivery_id)
        if isinstance(prepared, str):
            return prepared
        code, error = _post(prepared)
        outcome, delay = _record(delivery_id, code, error)
        WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()
        if outcome == "retry":
            log.warning("webhook %s to %s failed (%s); retrying in %.1f s", delivery_id, prepared.url, error, delay)
            send_delivery(delivery_id, countdown=delay)
        else:
            log.info("webhook %s to %s: %s", delivery_id, prepared.url, outcome)
        return outcome


def resend_overdue(grace_s: int = 300) -> list[str]:
    """Send again the pending deliveries whose attempt is overdue by ``grace_s`` (their task was lost: the
    broker was down when it was sent, or the message went with a broker). Each is pushed back by ``grace_s``
    so it is re-sent at most that often; a duplicate task finds the delivery done and does nothing."""
    t = now()
    with session_scope() as s:
        rows = repo.overdue(s, t - grace_s)
        for d in rows:
            d.next_attempt_at = t
        ids = [d.id for d in rows]
    for delivery_id in ids:
        send_delivery(delivery_id)
    return ids
