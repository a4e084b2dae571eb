"""FastAPI application: OpenAI-compatible fine-tuning API plus Keel's admin and safety extensions."""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.routers import admin, files, health, jobs, models
from core.errors import KeelError

log = logging.getLogger("keel.api")


def _envelope(status: int, message: str, type_: str, param: str | None = None, code: str | None = None) -> JSONResponse:
    return JSONResponse(status_code=status,
                        content={"error": {"message": message, "type": type_, "param": param, "code": code}})


def _validation_param(loc: tuple) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(KeelError)
    async def _keel(_: Request, exc: KeelError) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content=exc.body())

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        param = _validation_param(tuple(first.get("loc", ())))
        msg = f"{param}: {first.get('msg')}" if param else str(first.get("msg"))
        return _envelope(400, msg, "invalid_request_error", param, "invalid_value")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {401: "authentication_error", 403: "permission_error", 404: "not_found_error"}.get(exc.status_code,
                                                                                               "invalid_request_error")
        return _envelope(exc.status_code, str(exc.detail), kind)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return _envelope(500, "The server had an error while processing your request.", "server_error")


def create_app() -> FastAPI:
    app = FastAPI(title="Keel", version="0.1.0",
                  description="Fine-tuning as a service; every adapter comes back safety-realigned.")
    install_error_handlers(app)
    for router in (health.router, files.router, jobs.router, models.router, admin.router):
        app.include_router(router)
    return app


app = create_app()
