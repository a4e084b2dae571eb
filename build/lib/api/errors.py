"""Every error leaves the API as OpenAI's envelope {"error": {"message", "type", "param", "code"}}."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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
) -> JSONResponse:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return JSONResponse(status_code=status, content=body, headers=headers)


def _validation_param(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


async def _keel(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KeelError)
    headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, RateLimited) else None
    return JSONResponse(status_code=exc.status_code, content=exc.body(), headers=headers)


async def _too_deep(_: Request, exc: Exception) -> JSONResponse:
    return envelope(400, "The request body is nested too deeply.", "invalid_request_error", None, "invalid_json")


async def _invalid(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0]
    param = _validation_param(tuple(first.get("loc", ())))
    msg = f"{param}: {first.get('msg')}" if param else str(first.get("msg"))
    return envelope(400, msg, "invalid_request_error", param, "invalid_value")


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    kind = _HTTP_TYPES.get(exc.status_code, "invalid_request_error")
    param, code = ("file", "file_too_large") if exc.status_code == 413 else (None, None)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request.app.router.routes, request.url.path))
    return envelope(exc.status_code, str(exc.detail), kind, param, code, headers=headers)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return envelope(500, "The server had an error while processing your request.", "server_error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(KeelError, _keel)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RecursionError, _too_deep)
    app.add_exception_handler(Exception, _unexpected)
