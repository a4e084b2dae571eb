"""The LoRA a job asks for (its request's ``lora`` options): shared by the job request and the base model that
decides the job's LoRA config, below both domains."""

from __future__ import annotations

from pydantic import Field

from core.schemas import Body


class LoraOptions(Body):
    r: int | None = Field(default=None, ge=1, le=512)
    alpha: int | None = Field(default=None, ge=1, le=4096)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    target_modules: list[str] | None = None
