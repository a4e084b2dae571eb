"""Webhook endpoint and delivery objects."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.webhooks.models import WebhookDelivery, WebhookEndpoint


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2000, description="http(s) URL Keel POSTs events to")
    events: list[str] | None = Field(default=None, max_length=10, description="event types; omitted: all")
    description: str | None = Field(default=None, max_length=500)


class EndpointObject(BaseModel):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    url: str
    events: list[str]
    description: str | None
    created_at: int
    secret: str | None = Field(default=None, description="only when created or rotated: keep it to verify")
    previous_secret_expires_at: int | None = None

    @classmethod
    def of(cls, row: WebhookEndpoint, with_secret: bool = False) -> EndpointObject:
        return cls(
            id=row.id,
            url=row.url,
            events=list(row.events or []),
            description=row.description,
            created_at=row.created_at,
            secret=row.secret if with_secret else None,
            previous_secret_expires_at=row.previous_expires_at,
        )


class EndpointDeleted(BaseModel):
    id: str
    object: Literal["webhook_endpoint.deleted"] = "webhook_endpoint.deleted"
    deleted: bool = True


class DeliveryObject(BaseModel):
    id: str
    object: Literal["webhook_delivery"] = "webhook_delivery"
    endpoint_id: str
    event_id: str
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: int | None
    created_at: int
    delivered_at: int | None
    payload: dict[str, Any]

    @classmethod
    def of(cls, row: WebhookDelivery) -> DeliveryObject:
        return cls(
            id=row.id,
            endpoint_id=row.endpoint_id,
            event_id=row.event_id,
            event_type=row.event_type,
            status=row.status,
            attempts=row.attempts,
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            next_attempt_at=row.next_attempt_at,
            created_at=row.created_at,
            delivered_at=row.delivered_at,
            payload=row.payload,
        )
