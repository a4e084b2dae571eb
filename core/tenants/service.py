"""Tenants and API keys: only the sha256 of a key is stored; the plaintext is shown once at creation."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from core.errors import AuthenticationError, NotFound, PermissionDenied
from core.ids import now
from core.tenants import repository as repo
from core.tenants.models import ApiKey, AuditEvent, Tenant
from core.tenants.states import Role

LAST_USED_RESOLUTION_S = 60


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    role: str
    key_id: str

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    def require_admin(self) -> None:
        if not self.is_admin:
            raise PermissionDenied("This endpoint requires an admin API key.", code="admin_required")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    session: Session, tenant_id: str, role: str = Role.USER, name: str | None = None, plaintext: str | None = None
) -> tuple[ApiKey, str]:
    if repo.get_tenant(session, tenant_id) is None:
        raise NotFound("tenant", tenant_id, param="tenant_id")
    key = plaintext or f"sk-keel-{secrets.token_urlsafe(24)}"
    row = ApiKey(tenant_id=tenant_id, key_hash=hash_key(key), prefix=key[:12], role=Role(role), name=name)
    repo.add(session, row)
    return row, key


def create_tenant(
    session: Session, name: str, role: str = Role.USER, plaintext: str | None = None
) -> tuple[Tenant, str]:
    tenant = Tenant(name=name)
    repo.add(session, tenant)
    _, key = create_key(session, tenant.id, role=role, name=f"{name[:196]} key", plaintext=plaintext)
    return tenant, key


def ensure_key(session: Session, name: str, role: str, plaintext: str) -> bool:
    """Idempotently make sure a known key exists (embedded dev keys, production bootstrap admin key). False
    when it exists but was revoked: a revoked key is never revived, and it is not "present"."""
    row = repo.key_by_hash(session, hash_key(plaintext))
    if row is None:
        create_tenant(session, name, role=role, plaintext=plaintext)
        return True
    return row.revoked_at is None


def audit(session: Session, actor: Principal, action: str, target_tenant_id: str | None, target_id: str | None) -> None:
    repo.add(
        session,
        AuditEvent(
            actor_key_id=actor.key_id,
            actor_tenant_id=actor.tenant_id,
            action=action,
            target_tenant_id=target_tenant_id,
            target_id=target_id,
        ),
    )


def issue_key(session: Session, actor: Principal, tenant_id: str, role: str, name: str | None) -> tuple[ApiKey, str]:
    """An admin mints a key; minting one in another tenant is recorded as an audit event."""
    row, key = create_key(session, tenant_id, role=role, name=name)
    if tenant_id != actor.tenant_id:
        audit(session, actor, "api_key.create", tenant_id, row.id)
    return row, key


def register_tenant(session: Session, actor: Principal, name: str, role: str) -> tuple[Tenant, str]:
    tenant, key = create_tenant(session, name, role=role)
    audit(session, actor, "tenant.create", tenant.id, tenant.id)
    return tenant, key


def set_safety_policy(session: Session, actor: Principal, tenant_id: str, allow_unrealigned: bool) -> Tenant:
    """An admin grants (or withdraws) a tenant's right to release adapters without realignment; audited."""
    tenant = repo.get_tenant(session, tenant_id)
    if tenant is None:
        raise NotFound("tenant", tenant_id, param="tenant_id")
    if tenant.allow_unrealigned != allow_unrealigned:
        tenant.allow_unrealigned = allow_unrealigned
        action = "tenant.allow_unrealigned" if allow_unrealigned else "tenant.disallow_unrealigned"
        audit(session, actor, action, tenant_id, tenant_id)
    return tenant


def require_unrealigned_allowed(session: Session, tenant_id: str) -> None:
    """403 unless an admin granted this tenant ``safety.realign: "none"``."""
    tenant = repo.get_tenant(session, tenant_id)
    if tenant is None or not tenant.allow_unrealigned:
        raise PermissionDenied(
            "Realignment cannot be switched off for this organization: 'safety.realign: none' needs an "
            "operator's grant (an admin's safety policy for the tenant).",
            param="safety.realign",
            code="realign_disabled_by_policy",
        )


def list_keys(session: Session, tenant_id: str) -> list[ApiKey]:
    if repo.get_tenant(session, tenant_id) is None:
        raise NotFound("tenant", tenant_id, param="tenant_id")
    return repo.keys_of(session, tenant_id)


def revoke_key(session: Session, actor: Principal, tenant_id: str, key_id: str) -> ApiKey:
    row = repo.get_key(session, tenant_id, key_id)
    if row is None:
        raise NotFound("API key", key_id, param="key_id")
    if row.revoked_at is None:
        row.revoked_at = now()
        audit(session, actor, "api_key.revoke", tenant_id, key_id)
    return row


def audit_log(session: Session, limit: int) -> list[AuditEvent]:
    return repo.audit_events(session, limit)


def active_key_ids(session: Session, key_ids: set[str]) -> set[str]:
    """Which of ``key_ids`` are not revoked (one query)."""
    return repo.active_key_ids(session, key_ids)


def authenticate(session: Session, authorization: str | None) -> Principal:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise AuthenticationError("Missing bearer API key in the Authorization header.", code="missing_api_key")
    key = authorization.split(" ", 1)[1].strip()
    row = repo.active_key_by_hash(session, hash_key(key))
    if row is None:
        raise AuthenticationError("Incorrect API key provided.", code="invalid_api_key")
    t = now()
    if row.last_used_at is None or row.last_used_at < t - LAST_USED_RESOLUTION_S:
        # a write at most once a minute per key: every other request stays read-only (on SQLite a read that
        # turns into a write contends for the one writer lock)
        repo.touch(session, row.id, t, older_than=t - LAST_USED_RESOLUTION_S)
    return Principal(tenant_id=row.tenant_id, role=row.role, key_id=row.id)
