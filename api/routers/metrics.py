"""GET /metrics: Prometheus exposition of every Keel process sharing the metrics directory (API workers,
and the Celery workers on the same host or volume), plus the job and queue gauges read from the database.
Open by default, like most scrape targets (keep it on the operators' network); with KEEL_METRICS_TOKEN set it
needs that bearer token (Prometheus: ``authorization: {credentials: ...}`` in the scrape config)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import Response

from core.config import get_settings
from core.errors import AuthenticationError
from core.hooks import DbCollector
from core.observability.metrics import render

router = APIRouter(tags=["operations"])


def _check_token(authorization: str | None) -> None:
    token = get_settings().metrics_token
    if token and not hmac.compare_digest((authorization or "").encode(), f"Bearer {token}".encode()):
        raise AuthenticationError("GET /metrics needs the metrics bearer token (KEEL_METRICS_TOKEN).")


@router.get("/metrics", include_in_schema=False)
def metrics(authorization: Annotated[str | None, Header()] = None) -> Response:
    _check_token(authorization)
    body, content_type = render(DbCollector())
    return Response(content=body, media_type=content_type)
