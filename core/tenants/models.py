"""Tenants and their API keys (only the sha256 of a key is stored)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, false
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base
from core.ids import new_id, now


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("org-"))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[int] = mapped_column(default=now)
    # operator policy: may this tenant's jobs ask for ``safety.realign: "none"`` (release adapters as trained)?
    # Off by default; only an admin grants it, and each change is an audit event.
    allow_unrealigned: Mapped[bool] = mapped_column(default=False, server_default=false())


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("key-"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16), default="user")  # Role
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[int] = mapped_column(default=now)
    revoked_at: Mapped[int | None] = mapped_column()
    last_used_at: Mapped[int | None] = mapped_column()


class AuditEvent(Base):
    """Who did what outside their own tenant (admin actions), append-only."""

    __tablename__ = "audit_events"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("audit-"))
    actor_key_id: Mapped[str] = mapped_column(String(40))
    actor_tenant_id: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(60))
    target_tenant_id: Mapped[str | None] = mapped_column(String(40), index=True)
    target_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[int] = mapped_column(default=now, index=True)
