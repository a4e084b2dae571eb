"""FastAPI application: OpenAI-compatible fine-tuning API plus Keel's admin and safety extensions."""

from __future__ import annotations

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.limits import BodyLimit
from api.openapi import install_openapi
from api.routers import admin, files, health, jobs, models
from core.config import get_settings


def create_app() -> FastAPI:
    app = FastAPI(
        title="Keel",
        version="0.1.0",
        description="Fine-tuning as a service; every adapter comes back safety-realigned.",
    )
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(BodyLimit, upload_limit=get_settings().max_upload_bytes)
    for router in (health.router, files.router, jobs.router, models.router, admin.router):
        app.include_router(router)
    return app


app = create_app()
