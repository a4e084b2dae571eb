"""Admin-registered base models and their safety-neuron mask versions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, JSONType
from core.ids import new_id, now


class BaseModelRecord(Base):
    __tablename__ = "base_models"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    path: Mapped[str] = mapped_column(String(1000))  # local dir or hub name (from_pretrained)
    alignment_adapter: Mapped[str | None] = mapped_column(String(1000))
    chat_template: Mapped[str | None] = mapped_column(Text)
    context_length: Mapped[int] = mapped_column(default=2048)
    safety_data: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)  # paths of eval/corpus splits
    reference_scores: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # aligned model's HS etc.
    owned_by: Mapped[str] = mapped_column(String(200), default="keel")
    created_at: Mapped[int] = mapped_column(default=now)


class SafetyMask(Base):
    __tablename__ = "safety_masks"
    __table_args__ = (UniqueConstraint("base_model_id", "version"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("mask-"))
    base_model_id: Mapped[str] = mapped_column(ForeignKey("base_models.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column()
    method: Mapped[str] = mapped_column(String(40))
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    config_hash: Mapped[str] = mapped_column(String(64))
    corpus_hash: Mapped[str] = mapped_column(String(64))
    corpus_file_id: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default="queued")  # MaskStatus
    stats: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    storage_key: Mapped[str | None] = mapped_column(String(500))
    error: Mapped[str | None] = mapped_column(Text)
    compute_s: Mapped[float | None] = mapped_column(Float)
    lease_owner: Mapped[str | None] = mapped_column(String(200))  # the worker computing a running version
    lease_expires_at: Mapped[int | None] = mapped_column()  # renewed while computing; past it, anyone may take over
    created_at: Mapped[int] = mapped_column(default=now)
    finished_at: Mapped[int | None] = mapped_column()
