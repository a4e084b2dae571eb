"""Queries on tenants and API keys."""

from __future__ import annotations

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from core.tenants.models import ApiKey, AuditEvent, Tenant


def get_tenant(session: Session, tenant_id: str) -> Tenant | None:
    return session.get(Tenant, tenant_id)


def active_key_by_hash(session: Session, key_hash: str) -> ApiKey | None:
    return session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None)))


def active_key_ids(session: Session, key_ids: set[str]) -> set[str]:
    if not key_ids:
        return set()
    q = select(ApiKey.id).where(ApiKey.id.in_(key_ids), ApiKey.revoked_at.is_(None))
    return set(session.scalars(q))


def key_by_hash(session: Session, key_hash: str) -> ApiKey | None:
    return session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash))


def keys_of(session: Session, tenant_id: str) -> list[ApiKey]:
    return list(
        session.scalars(select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.created_at, ApiKey.id))
    )


def get_key(session: Session, tenant_id: str, key_id: str) -> ApiKey | None:
    row = session.get(ApiKey, key_id)
    return row if row is not None and row.tenant_id == tenant_id else None


def touch(session: Session, key_id: str, t: int, older_than: int) -> None:
    session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < older_than))
        .values(last_used_at=t)
    )


def audit_events(session: Session, limit: int) -> list[AuditEvent]:
    return list(
        session.scalars(select(AuditEvent).order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(limit))
    )


def add(session: Session, row: Tenant | ApiKey | AuditEvent) -> None:
    session.add(row)
    session.flush()
