"""Request ids, request logs and HTTP metrics: one pure ASGI middleware, outermost.

Every request gets an id (the client's ``X-Request-ID`` when it is a sane token, else a new ``req_...``),
returned in the ``X-Request-ID`` response header, put in every error body (api.errors) and on every log line
written while the request is handled (core.observability.logs). Latency is observed per route template
(``/v1/fine_tuning/jobs/{job_id}``, never the raw path: bounded label values) and status.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.observability import logs
from core.observability.metrics import HTTP_SECONDS

SCOPE_KEY = "keel_request_id"
_SANE = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
log = logging.getLogger("keel.http")


def request_id_of(scope: Scope) -> str | None:
    rid = scope.get(SCOPE_KEY)
    return str(rid) if rid else None


def _incoming(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _SANE.match(text) else None
    return None


def _route(scope: Scope) -> str:
    route = scope.get("route")
    return str(getattr(route, "path", None) or "unmatched")


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _incoming(scope) or logs.new_request_id()
        scope[SCOPE_KEY] = rid
        started, status = time.perf_counter(), [500]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
                message["headers"] = [*headers, (b"x-request-id", rid.encode())]
            await send(message)

        with logs.scope(request_id=rid) as ctx:
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                self._done(scope, ctx, status[0], time.perf_counter() - started)

    @staticmethod
    def _done(scope: Scope, ctx: dict[str, Any], status: int, seconds: float) -> None:
        route = _route(scope)
        HTTP_SECONDS.labels(route=route, method=scope["method"], status=str(status)).observe(seconds)
        job_id = (scope.get("path_params") or {}).get("job_id")
        if job_id:
            ctx.setdefault("job_id", str(job_id))
        level = logging.WARNING if status >= 500 else logging.INFO
        log.log(
            level,
            "%s %s %d %.1f ms",
            scope["method"],
            scope["path"],
            status,
            seconds * 1000,
            extra={"route": route, "status": status, "duration_ms": round(seconds * 1000, 2)},
        )
