"""Request-scoped dependencies: a unit of work that commits before the response is sent, and the principal."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.auth import PRINCIPAL
from core.db import session_scope
from core.observability import logs
from core.tenants.limits import BUCKETS
from core.tenants.service import Principal, authenticate


def get_session() -> Iterator[Session]:
    with session_scope() as session:
        yield session


# scope="function": the commit runs when the endpoint returns, before the response is sent, so a client
# never reads "created" for a row another connection cannot see yet, and a failed commit is an error.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


# Declared as the OpenAPI bearer security scheme; auto_error=False so a missing or non-bearer header is our 401
# in OpenAI's envelope (authenticate() words it), not FastAPI's 403.
BEARER = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer sk-keel-...`")


def get_principal(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
) -> Principal:
    """The principal api.auth.AuthGate found before the body was read (authenticated here when the app runs
    without that middleware)."""
    principal = request.scope.get("state", {}).get(PRINCIPAL)
    if not isinstance(principal, Principal):
        principal = authenticate(session, f"Bearer {credentials.credentials}" if credentials else None)
    logs.bind(tenant_id=principal.tenant_id)  # on the request's later log lines
    BUCKETS.take(principal.key_id)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_admin(principal: PrincipalDep) -> Principal:
    principal.require_admin()
    return principal


AdminDep = Annotated[Principal, Depends(get_admin)]
