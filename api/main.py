"""FastAPI application: OpenAI-compatible fine-tuning API plus Keel's admin and safety extensions."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.auth import AuthGate
from api.errors import install_error_handlers
from api.limits import BodyLimit
from api.observability import RequestContext
from api.openapi import install_openapi
from api.routers import admin, files, health, jobs, metrics, models, webhooks
from api.streams import close_streams_on_shutdown
from core import hooks  # noqa: F401  (connects metrics and webhooks to the domains' signals)
from core.config import get_settings
from core.observability import logs
from core.observability import metrics as process_metrics


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    close_streams_on_shutdown()
    sys.setswitchinterval(get_settings().api_switch_interval_s)  # the event loop waits less for the GIL
    yield
    process_metrics.process_exited()  # this process's open-stream gauge leaves the sums


def create_app() -> FastAPI:
    app = FastAPI(
        lifespan=lifespan,
        title="Keel",
        version="0.1.0",
        description="Fine-tuning as a service; every adapter comes back safety-realigned.",
    )
    logs.configure_from_settings()
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(BodyLimit, upload_limit=get_settings().max_upload_bytes)
    app.add_middleware(AuthGate)  # a request without a valid key is refused before its body is read
    app.add_middleware(RequestContext)  # outermost: request id (also on AuthGate's refusals), request log, latency
    for router in (
        health.router,
        files.router,
        jobs.router,
        models.router,
        admin.router,
        webhooks.router,
        metrics.router,
    ):
        app.include_router(router)
    return app


app = create_app()
