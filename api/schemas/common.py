"""Shapes shared by every endpoint: the error envelope and OpenAI's list page."""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from pydantic import BaseModel

T = TypeVar("T")


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None
    request_id: str | None = None  # also in the X-Request-ID response header


class ErrorResponse(BaseModel):
    error: ErrorBody


class Page(BaseModel, Generic[T]):
    object: Literal["list"] = "list"
    data: list[T]
    has_more: bool


class IdPage(Page[T], Generic[T]):
    first_id: str | None = None
    last_id: str | None = None


def page(data: list[T], has_more: bool) -> Page[T]:
    return Page[T](data=data, has_more=has_more)


def id_page(data: list[T], has_more: bool, ids: list[str]) -> IdPage[T]:
    return IdPage[T](data=data, has_more=has_more, first_id=ids[0] if ids else None, last_id=ids[-1] if ids else None)


ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in (
        (400, "Invalid request"),
        (401, "Missing or invalid API key"),
        (403, "Admin key required"),
        (404, "Not found (or another tenant's)"),
        (409, "Conflict with the object's state"),
        (413, "Request body over the size limit"),
        (429, "Rate limited (per API key, or too many open event streams); see Retry-After"),
    )
}
ERRORS[429]["headers"] = {
    "Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}
}
