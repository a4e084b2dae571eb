"""Request-scoped dependencies: a unit of work that commits before the response is sent, and the principal."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header
from sqlalchemy.orm import Session

from core.db import session_scope
from core.tenants.limits import BUCKETS
from core.tenants.service import Principal, authenticate


def get_session() -> Iterator[Session]:
    with session_scope() as session:
        yield session


# scope="function": the commit runs when the endpoint returns, before the response is sent, so a client
# never reads "created" for a row another connection cannot see yet, and a failed commit is an error.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_principal(session: SessionDep, authorization: Annotated[str | None, Header()] = None) -> Principal:
    principal = authenticate(session, authorization)
    BUCKETS.take(principal.key_id)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_admin(principal: PrincipalDep) -> Principal:
    principal.require_admin()
    return principal


AdminDep = Annotated[Principal, Depends(get_admin)]
