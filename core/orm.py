"""ORM tables. Timestamps are Unix seconds (the OpenAI wire format); ids carry OpenAI-style prefixes."""
from __future__ import annotations

import secrets
import time

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, JSONType


def now() -> int:
    return int(time.time())


def new_id(prefix: str) -> str:
    """Time-sortable id: 13 hex digits of microseconds since the epoch, then 11 random hex digits.

    Lists are ordered by (created_at, id); created_at is whole seconds as in the OpenAI wire format, so
    the id must carry the sub-second order or two jobs created in the same second list in random order.
    """
    return f"{prefix}{time.time_ns() // 1000:013x}{secrets.token_hex(6)[:11]}"


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("org-"))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[int] = mapped_column(Integer, default=now)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("key-"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16), default="user")  # user | admin
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[int] = mapped_column(Integer, default=now)
    revoked_at: Mapped[int | None] = mapped_column(Integer)


class File(Base):
    __tablename__ = "files"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("file-"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(500))
    purpose: Mapped[str] = mapped_column(String(40))
    bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(20))  # processed | error
    status_details: Mapped[str | None] = mapped_column(Text)
    validation: Mapped[dict] = mapped_column(JSONType, default=dict)  # counts, token stats, errors
    created_at: Mapped[int] = mapped_column(Integer, default=now)


class BaseModel(Base):
    __tablename__ = "base_models"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    path: Mapped[str] = mapped_column(String(1000))  # local dir or hub name (from_pretrained)
    alignment_adapter: Mapped[str | None] = mapped_column(String(1000))
    chat_template: Mapped[str | None] = mapped_column(Text)
    context_length: Mapped[int] = mapped_column(Integer, default=2048)
    safety_data: Mapped[dict] = mapped_column(JSONType, default=dict)  # paths of eval/corpus splits
    reference_scores: Mapped[dict] = mapped_column(JSONType, default=dict)  # aligned model's HS etc.
    owned_by: Mapped[str] = mapped_column(String(200), default="keel")
    created_at: Mapped[int] = mapped_column(Integer, default=now)


class SafetyMask(Base):
    __tablename__ = "safety_masks"
    __table_args__ = (UniqueConstraint("base_model_id", "version"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("mask-"))
    base_model_id: Mapped[str] = mapped_column(ForeignKey("base_models.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(40))
    config: Mapped[dict] = mapped_column(JSONType, default=dict)
    config_hash: Mapped[str] = mapped_column(String(64))
    corpus_hash: Mapped[str] = mapped_column(String(64))
    corpus_file_id: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default="queued")  # queued|running|ready|failed
    stats: Mapped[dict] = mapped_column(JSONType, default=dict)
    storage_key: Mapped[str | None] = mapped_column(String(500))
    error: Mapped[str | None] = mapped_column(Text)
    compute_s: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[int] = mapped_column(Integer, default=now)
    finished_at: Mapped[int | None] = mapped_column(Integer)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_jobs_status_lease", "status", "lease_expires_at"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ftjob-"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    model: Mapped[str] = mapped_column(ForeignKey("base_models.id"))
    training_file: Mapped[str] = mapped_column(String(40))
    validation_file: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default="validating_files")
    stage: Mapped[str | None] = mapped_column(String(20))
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    hyperparameters: Mapped[dict] = mapped_column(JSONType, default=dict)
    lora: Mapped[dict] = mapped_column(JSONType, default=dict)
    safety: Mapped[dict] = mapped_column(JSONType, default=dict)
    suffix: Mapped[str | None] = mapped_column(String(64))
    seed: Mapped[int] = mapped_column(Integer, default=0)
    metadata_: Mapped[dict | None] = mapped_column("metadata", JSONType)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[dict | None] = mapped_column(JSONType)
    fine_tuned_model: Mapped[str | None] = mapped_column(String(300))
    trained_tokens: Mapped[int | None] = mapped_column(Integer)
    total_steps: Mapped[int | None] = mapped_column(Integer)
    estimated_finish: Mapped[int | None] = mapped_column(Integer)
    mask_id: Mapped[str | None] = mapped_column(String(40))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[int | None] = mapped_column(Integer)
    dispatched_at: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[int] = mapped_column(Integer, default=now, index=True)
    started_at: Mapped[int | None] = mapped_column(Integer)
    finished_at: Mapped[int | None] = mapped_column(Integer)


class JobEvent(Base):
    __tablename__ = "job_events"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True, default=lambda: new_id("ftevent-"))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[int] = mapped_column(Integer, default=now)
    level: Mapped[str] = mapped_column(String(10), default="info")
    type: Mapped[str] = mapped_column(String(20), default="message")
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict | None] = mapped_column(JSONType)


class Checkpoint(Base):
    __tablename__ = "checkpoints"
    __table_args__ = (UniqueConstraint("job_id", "step_number"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ftckpt-"))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    step_number: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict] = mapped_column(JSONType, default=dict)
    path: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[int] = mapped_column(Integer, default=now)


class Artifact(Base):
    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("job_id", "kind"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("art-"))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))  # adapter | adapter_raw | report_plot
    storage_key: Mapped[str] = mapped_column(String(1000))
    sha256: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(Integer)
    manifest: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[int] = mapped_column(Integer, default=now)


class SafetyReport(Base):
    __tablename__ = "safety_reports"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ftsafety-"))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), unique=True)
    mask_id: Mapped[str | None] = mapped_column(String(40))
    passed: Mapped[bool] = mapped_column(Boolean)
    data: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[int] = mapped_column(Integer, default=now)
