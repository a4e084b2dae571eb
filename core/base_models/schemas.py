"""Request bodies of the base-model admin endpoints."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from core.schemas import Body


class BaseModelCreate(Body):
    id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:/-]+$")
    path: str
    alignment_adapter: str | None = None
    chat_template: str | None = None
    context_length: int = Field(default=2048, ge=16, le=1 << 20)
    safety_data: dict[str, str] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if v.startswith("/") or any(part in ("", ".", "..") for part in v.split("/")):
            raise ValueError("id: '/'-separated names, none of them empty, '.' or '..'")
        return v


class MaskCreate(Body):
    method: Literal["all", "nlsr", "sn_tune", "fgsn"] = "all"
    config: dict[str, Any] = Field(default_factory=dict)
    corpus_file: str | None = None
