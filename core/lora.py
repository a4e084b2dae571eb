"""The LoRA a job asks for (its request's ``lora`` options): shared by the job request and the base model that
decides the job's LoRA config, below both domains."""

from __future__ import annotations

from pydantic import Field, field_validator

from core.schemas import Body


class LoraOptions(Body):
    r: int | None = Field(default=None, ge=1, le=512)
    alpha: int | None = Field(default=None, ge=1, le=4096)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    target_modules: list[str] | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("target_modules")
    @classmethod
    def _modules(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and (len(set(v)) != len(v) or any(not 0 < len(m) <= 200 for m in v)):
            raise ValueError("target_modules: distinct names of 1 to 200 characters")
        return v
