"""Liveness/readiness: the database answers."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import SessionDep
from core.db import ping

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


@router.get("/healthz")
def healthz(session: SessionDep) -> Health:
    ping(session)
    return Health(status="ok")
