"""API keys: only the sha256 of a key is stored; the plaintext is shown once at creation."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import AuthenticationError, PermissionDenied
from core.orm import ApiKey, Tenant


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    role: str
    key_id: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def require_admin(self) -> None:
        if not self.is_admin:
            raise PermissionDenied("This endpoint requires an admin API key.", code="admin_required")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, tenant_id: str, role: str = "user", name: str | None = None,
               plaintext: str | None = None) -> tuple[ApiKey, str]:
    if role not in ("user", "admin"):
        raise ValueError(f"unknown role {role!r}")
    key = plaintext or f"sk-keel-{secrets.token_urlsafe(24)}"
    row = ApiKey(tenant_id=tenant_id, key_hash=hash_key(key), prefix=key[:12], role=role, name=name)
    session.add(row)
    session.flush()
    return row, key


def create_tenant(session: Session, name: str, role: str = "user", plaintext: str | None = None) -> tuple[Tenant, str]:
    tenant = Tenant(name=name)
    session.add(tenant)
    session.flush()
    _, key = create_key(session, tenant.id, role=role, name=f"{name} key", plaintext=plaintext)
    return tenant, key


def ensure_key(session: Session, name: str, role: str, plaintext: str) -> None:
    """Idempotently make sure a known key exists (embedded mode's printed dev keys)."""
    if session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(plaintext))) is None:
        create_tenant(session, name, role=role, plaintext=plaintext)


def authenticate(session: Session, authorization: str | None) -> Principal:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise AuthenticationError("Missing bearer API key in the Authorization header.", code="missing_api_key")
    key = authorization.split(" ", 1)[1].strip()
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None)))
    if row is None:
        raise AuthenticationError("Incorrect API key provided.", code="invalid_api_key")
    return Principal(tenant_id=row.tenant_id, role=row.role, key_id=row.id)
