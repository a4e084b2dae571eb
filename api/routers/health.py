"""Liveness and readiness, kept apart so probing liveness under load costs nothing but the event loop.

- ``/healthz`` (liveness): the process serves HTTP. No database round trip, no thread-pool hop: its latency
  is the event loop's, and a database outage does not make an orchestrator restart every API process.
- ``/readyz`` (readiness): the database answers (503 otherwise), for load balancers and deploy gates.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from core.db import database_ready

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


@router.get("/healthz")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database does not answer"}},
)
def readyz() -> Health | JSONResponse:
    if not database_ready():
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return Health(status="ok")
