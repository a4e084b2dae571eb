"""What a job produced: stored artifacts (adapter zips, report plot) and its safety report."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, JSONType
from core.ids import new_id, now


class Artifact(Base):
    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("job_id", "kind"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("art-"))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))  # ArtifactKind
    storage_key: Mapped[str] = mapped_column(String(1000))
    sha256: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column()
    manifest: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[int] = mapped_column(default=now)


class SafetyReport(Base):
    __tablename__ = "safety_reports"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ftsafety-"))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), unique=True)
    mask_id: Mapped[str | None] = mapped_column(String(40))
    passed: Mapped[bool] = mapped_column()
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[int] = mapped_column(default=now)
