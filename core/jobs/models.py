"""Fine-tuning jobs: the row is the source of truth; brokers carry only its id."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, JSONType
from core.ids import new_id, now


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
    status: Mapped[str] = mapped_column(String(20), default="queued")  # JobStatus
    stage: Mapped[str | None] = mapped_column(String(20))  # Stage
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # as resolved at creation
    # what its attempts measured (observed_tokens_per_s, train_wall_s, realign_wall_s): read by later estimates
    observed: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    lora: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    safety: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    suffix: Mapped[str | None] = mapped_column(String(64))
    seed: Mapped[int] = mapped_column(default=0)
    metadata_: Mapped[dict[str, str] | None] = mapped_column("metadata", JSONType)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    fine_tuned_model: Mapped[str | None] = mapped_column(String(300))
    trained_tokens: Mapped[int | None] = mapped_column()
    estimated_finish: Mapped[int | None] = mapped_column()
    mask_id: Mapped[str | None] = mapped_column(String(40))
    attempt: Mapped[int] = mapped_column(default=0)  # bumped by every claim (the fencing token)
    keep_last_checkpoint: Mapped[bool] = mapped_column(default=False, server_default=false())  # survives retention
    lost_workers: Mapped[int] = mapped_column(default=0, server_default="0")  # workers lost; bounded by max_attempts
    worker_memory: Mapped[dict[str, Any] | None] = mapped_column(JSONType)  # last heartbeat's sample (internal)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[int | None] = mapped_column()
    dispatched_at: Mapped[int | None] = mapped_column()
    created_at: Mapped[int] = mapped_column(default=now, index=True)
    started_at: Mapped[int | None] = mapped_column()
    finished_at: Mapped[int | None] = mapped_column()
