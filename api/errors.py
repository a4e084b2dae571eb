"""Every error leaves the API as OpenAI's envelope {"error": {"message", "type", "param", "code"}}, plus the
request's id (``request_id``, also in the ``X-Request-ID`` header): clients tolerate extra fields."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.observability import request_id_of
from api.openapi import allowed_methods
from core.errors import KeelError, RateLimited

log = logging.getLogger("keel.api")
_HTTP_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error"}


def envelope(
    status: int,
    message: str,
    type_: str,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    request: Request | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return _with_id(request, JSONResponse(status_code=status, content=_tagged(request, body), headers=headers))


def _tagged(request: Request | None, body: dict[str, Any]) -> dict[str, Any]:
    rid = request_id_of(request.scope) if request is not None else None
    if rid:
        body["error"]["request_id"] = rid
    return body


def _with_id(request: Request | None, response: JSONResponse) -> JSONResponse:
    """The id header on responses made outside the request middleware (the 500 handler runs outside it)."""
    rid = request_id_of(request.scope) if request is not None else None
    if rid:
        response.headers["X-Request-ID"] = rid
    return response


def _validation_param(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


async def _keel(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KeelError)
    headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, RateLimited) else None
    return JSONResponse(status_code=exc.status_code, content=_tagged(request, exc.body()), headers=headers)


async def _too_deep(request: Request, exc: Exception) -> JSONResponse:
    msg = "The request body is nested too deeply."
    return envelope(400, msg, "invalid_request_error", None, "invalid_json", request=request)


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0]
    param = _validation_param(tuple(first.get("loc", ())))
    msg = f"{param}: {first.get('msg')}" if param else str(first.get("msg"))
    return envelope(400, msg, "invalid_request_error", param, "invalid_value", request=request)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    kind = _HTTP_TYPES.get(exc.status_code, "invalid_request_error")
    param, code = ("file", "file_too_large") if exc.status_code == 413 else (None, None)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request.app.router.routes, request.url.path))
    return envelope(exc.status_code, str(exc.detail), kind, param, code, headers=headers, request=request)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc, extra={"request_id": request_id_of(request.scope)})
    msg = "The server had an error while processing your request."
    return envelope(500, msg, "server_error", request=request)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(KeelError, _keel)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RecursionError, _too_deep)
    app.add_exception_handler(Exception, _unexpected)
