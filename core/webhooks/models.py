"""Webhook endpoints (per tenant) and deliveries (one row per event and endpoint, the delivery log)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, JSONType
from core.ids import new_id, now


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("we_"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(String(500))
    events: Mapped[list[str]] = mapped_column(JSONType, default=list)  # empty: every event type
    secret: Mapped[str] = mapped_column(String(100))  # whsec_<base64>; needed in clear to sign
    previous_secret: Mapped[str | None] = mapped_column(String(100))  # still signs until previous_expires_at
    previous_expires_at: Mapped[int | None] = mapped_column()
    created_at: Mapped[int] = mapped_column(default=now)
    deleted_at: Mapped[int | None] = mapped_column()


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("endpoint_id", "event_id"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("msg_"))
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[str] = mapped_column(String(60))
    event_type: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending / delivered / failed
    attempts: Mapped[int] = mapped_column(default=0)
    last_status_code: Mapped[int | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[int | None] = mapped_column()
    created_at: Mapped[int] = mapped_column(default=now)
    delivered_at: Mapped[int | None] = mapped_column()
