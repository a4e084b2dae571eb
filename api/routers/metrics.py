"""GET /metrics: Prometheus exposition of every Keel process sharing the metrics directory (API workers,
and the Celery workers on the same host or volume), plus the job and queue gauges read from the database.
Unauthenticated, like any scrape target: keep it on the operators' network (deploy/prometheus.yml)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from core.observability.metrics import render

router = APIRouter(tags=["operations"])


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    body, content_type = render(with_db=True)
    return Response(content=body, media_type=content_type)
