"""Keel's admin views: a base model and its safety-mask versions, tenants, API keys and the audit trail."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from core.base_models.models import BaseModelRecord, SafetyMask


class BaseModelAdmin(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    path: str
    alignment_adapter: str | None
    context_length: int
    safety_data: dict[str, str]
    reference_scores: dict[str, Any]
    current_mask: str | None

    @classmethod
    def of(cls, m: BaseModelRecord, current_mask: SafetyMask | None) -> BaseModelAdmin:
        return cls(
            id=m.id,
            created=m.created_at,
            owned_by=m.owned_by,
            path=m.path,
            alignment_adapter=m.alignment_adapter,
            context_length=m.context_length,
            safety_data=m.safety_data,
            reference_scores=m.reference_scores,
            current_mask=current_mask.id if current_mask else None,
        )


class MaskObject(BaseModel):
    object: Literal["safety_mask"] = "safety_mask"
    id: str
    base_model: str
    version: int
    method: str
    config: dict[str, Any]
    config_hash: str
    corpus_hash: str
    status: str
    stats: dict[str, Any]
    error: str | None
    compute_seconds: float | None
    created_at: int
    finished_at: int | None

    @classmethod
    def of(cls, m: SafetyMask) -> MaskObject:
        return cls(
            id=m.id,
            base_model=m.base_model_id,
            version=m.version,
            method=m.method,
            config=m.config,
            config_hash=m.config_hash,
            corpus_hash=m.corpus_hash,
            status=m.status,
            stats=m.stats,
            error=m.error,
            compute_seconds=m.compute_s,
            created_at=m.created_at,
            finished_at=m.finished_at,
        )


class TenantObject(BaseModel):
    object: Literal["tenant"] = "tenant"
    id: str
    name: str
    api_key: str
    role: str


class TenantPolicyObject(BaseModel):
    """A tenant's safety policy: ``allow_unrealigned`` lets its jobs ask for ``safety.realign: "none"``."""

    model_config = ConfigDict(from_attributes=True)

    object: Literal["tenant.safety_policy"] = "tenant.safety_policy"
    id: str
    name: str
    allow_unrealigned: bool


class ApiKeyObject(BaseModel):
    object: Literal["api_key"] = "api_key"
    id: str
    tenant_id: str
    api_key: str
    role: str


class ApiKeyInfo(BaseModel):
    """An existing key: never its plaintext, only the prefix that identifies it."""

    model_config = ConfigDict(from_attributes=True)

    object: Literal["api_key"] = "api_key"
    id: str
    tenant_id: str
    prefix: str
    role: str
    name: str | None
    created_at: int
    last_used_at: int | None
    revoked_at: int | None


class AuditObject(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    object: Literal["audit_event"] = "audit_event"
    id: str
    actor_key_id: str
    actor_tenant_id: str
    action: str
    target_tenant_id: str | None
    target_id: str | None
    created_at: int
