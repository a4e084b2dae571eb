"""The OpenAPI document tells the truth: FastAPI's default 422 is never sent (validation errors are 400 in
OpenAI's envelope), and the 405 Allow header lists every method the path supports."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

NUL_NOTE = " No string anywhere in a request may contain a NUL character (400 invalid_value)."


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description=(app.description or "") + NUL_NOTE,
                routes=app.routes,
            )
            for item in doc.get("paths", {}).values():
                for op in item.values():
                    op.get("responses", {}).pop("422", None)
            schemas = doc.get("components", {}).get("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                schemas.pop(unused, None)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _leaves(routes: Sequence[Any]) -> Iterator[Any]:
    for route in routes:
        nested = getattr(getattr(route, "original_router", route), "routes", None)  # included routers
        if nested is not None and nested is not routes:
            yield from _leaves(nested)
        elif getattr(route, "path_regex", None) is not None:
            yield route


def allowed_methods(routes: Sequence[Any], path: str) -> list[str]:
    """Every method any route serves at this path (Starlette's 405 names only the first matching route's)."""
    methods: set[str] = set()
    for route in _leaves(routes):
        if route.path_regex.match(path):
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)
