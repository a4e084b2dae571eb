"""Queries on webhook endpoints and deliveries."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.pagination import after_cursor, fetch_page
from core.webhooks.models import WebhookDelivery, WebhookEndpoint


def add(session: Session, row: WebhookEndpoint | WebhookDelivery) -> None:
    session.add(row)
    session.flush()


def endpoint(session: Session, tenant_id: str, endpoint_id: str) -> WebhookEndpoint | None:
    row = session.get(WebhookEndpoint, endpoint_id)
    return row if row is not None and row.tenant_id == tenant_id and row.deleted_at is None else None


def endpoints(session: Session, tenant_id: str) -> list[WebhookEndpoint]:
    q = select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.deleted_at.is_(None))
    return list(session.scalars(q.order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)))


def count(session: Session, tenant_id: str) -> int:
    return len(endpoints(session, tenant_id))


def overdue(session: Session, before: int, limit: int = 100) -> list[WebhookDelivery]:
    q = select(WebhookDelivery).where(
        WebhookDelivery.status == "pending",
        WebhookDelivery.next_attempt_at.is_not(None),
        WebhookDelivery.next_attempt_at < before,
    )
    return list(session.scalars(q.order_by(WebhookDelivery.next_attempt_at).limit(limit)))


def delivery(session: Session, delivery_id: str) -> WebhookDelivery | None:
    return session.get(WebhookDelivery, delivery_id)


def deliveries(
    session: Session, endpoint_id: str, cursor: WebhookDelivery | None, limit: int
) -> tuple[list[WebhookDelivery], bool]:
    q = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    key = (cursor.created_at, cursor.id) if cursor else None
    return fetch_page(session, after_cursor(q, WebhookDelivery.created_at, WebhookDelivery.id, key), limit)
