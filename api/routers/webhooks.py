"""Webhook endpoints of the caller's organization: register, list, rotate the signing secret, delete, and read
an endpoint's delivery log. Events are signed in the Standard Webhooks format (core.webhooks.signing)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import PrincipalDep, SessionDep
from api.schemas.common import ERRORS, IdPage, Page, id_page, page
from api.schemas.webhooks import DeliveryObject, EndpointCreate, EndpointDeleted, EndpointObject
from core.webhooks import service as svc

router = APIRouter(prefix="/v1/webhook_endpoints", tags=["webhooks"], responses=ERRORS)


@router.post("")
def create(body: EndpointCreate, session: SessionDep, principal: PrincipalDep) -> EndpointObject:
    row = svc.create_endpoint(session, principal.tenant_id, body.url, body.events, body.description)
    return EndpointObject.of(row, with_secret=True)


@router.get("")
def list_endpoints(session: SessionDep, principal: PrincipalDep) -> Page[EndpointObject]:
    return page([EndpointObject.of(r) for r in svc.list_endpoints(session, principal.tenant_id)], False)


@router.get("/{endpoint_id}")
def retrieve(endpoint_id: str, session: SessionDep, principal: PrincipalDep) -> EndpointObject:
    return EndpointObject.of(svc.get_endpoint(session, principal.tenant_id, endpoint_id))


@router.delete("/{endpoint_id}")
def delete(endpoint_id: str, session: SessionDep, principal: PrincipalDep) -> EndpointDeleted:
    return EndpointDeleted(id=svc.delete_endpoint(session, principal.tenant_id, endpoint_id).id)


@router.post("/{endpoint_id}/rotate_secret")
def rotate_secret(endpoint_id: str, session: SessionDep, principal: PrincipalDep) -> EndpointObject:
    """A new secret signs from now on; the previous one also signs until ``previous_secret_expires_at``."""
    return EndpointObject.of(svc.rotate_secret(session, principal.tenant_id, endpoint_id), with_secret=True)


@router.get("/{endpoint_id}/deliveries")
def deliveries(
    endpoint_id: str,
    session: SessionDep,
    principal: PrincipalDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> IdPage[DeliveryObject]:
    rows, more = svc.list_deliveries(session, principal.tenant_id, endpoint_id, after, limit)
    return id_page([DeliveryObject.of(r) for r in rows], more, [r.id for r in rows])
