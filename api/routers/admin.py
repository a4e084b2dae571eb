"""Admin endpoints: base models, safety-mask versions, tenants and API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AdminDep, SessionDep
from api.schemas.admin import (
    ApiKeyInfo,
    ApiKeyObject,
    AuditObject,
    BaseModelAdmin,
    MaskObject,
    TenantObject,
    TenantPolicyObject,
)
from api.schemas.common import ERRORS, Page, page
from core.base_models import service as svc
from core.base_models.schemas import BaseModelCreate, MaskCreate
from core.files.service import get_file, read_file_bytes
from core.queue import COMPUTE_MASKS, send_after_commit
from core.tenants import service as tenants
from core.tenants.schemas import SafetyPolicy, TenantCreate

router = APIRouter(prefix="/v1/admin", tags=["admin"], responses=ERRORS)


@router.post("/base_models")
def register_model(body: BaseModelCreate, session: SessionDep, _: AdminDep) -> BaseModelAdmin:
    row = svc.register_model(session, body)
    return BaseModelAdmin.of(row, svc.current_mask(session, row.id))


@router.get("/base_models")
def list_models(session: SessionDep, _: AdminDep) -> Page[BaseModelAdmin]:
    return page([BaseModelAdmin.of(m, svc.current_mask(session, m.id)) for m in svc.list_models(session)], False)


@router.get("/base_models/{model_id:path}/safety_masks")
def list_masks(model_id: str, session: SessionDep, _: AdminDep) -> Page[MaskObject]:
    return page([MaskObject.of(m) for m in svc.list_masks(session, model_id)], False)


@router.post("/base_models/{model_id:path}/safety_masks")
def recompute_masks(model_id: str, body: MaskCreate, session: SessionDep, admin: AdminDep) -> MaskObject:
    model = svc.require_model(session, model_id)
    corpus = (
        read_file_bytes(get_file(session, admin.tenant_id, body.corpus_file, "corpus_file"))
        if body.corpus_file
        else None
    )
    row = svc.create_mask(session, model, body, corpus)
    send_after_commit(session, COMPUTE_MASKS, row.id)
    return MaskObject.of(row)


@router.get("/base_models/{model_id:path}")
def get_model(model_id: str, session: SessionDep, _: AdminDep) -> BaseModelAdmin:
    row = svc.require_model(session, model_id)
    return BaseModelAdmin.of(row, svc.current_mask(session, row.id))


@router.post("/tenants")
def new_tenant(body: TenantCreate, session: SessionDep, admin: AdminDep) -> TenantObject:
    tenant, key = tenants.register_tenant(session, admin, body.name, body.role)
    return TenantObject(id=tenant.id, name=tenant.name, api_key=key, role=body.role)


@router.post("/tenants/{tenant_id}/safety_policy")
def set_safety_policy(tenant_id: str, body: SafetyPolicy, session: SessionDep, admin: AdminDep) -> TenantPolicyObject:
    """Grant (or withdraw) a tenant's right to run jobs with ``safety.realign: "none"`` (audited)."""
    tenant = tenants.set_safety_policy(session, admin, tenant_id, body.allow_unrealigned)
    return TenantPolicyObject.model_validate(tenant)


@router.post("/tenants/{tenant_id}/api_keys")
def new_key(tenant_id: str, body: TenantCreate, session: SessionDep, admin: AdminDep) -> ApiKeyObject:
    row, key = tenants.issue_key(session, admin, tenant_id, role=body.role, name=body.name)
    return ApiKeyObject(id=row.id, tenant_id=tenant_id, api_key=key, role=row.role)


@router.get("/tenants/{tenant_id}/api_keys")
def list_keys(tenant_id: str, session: SessionDep, _: AdminDep) -> Page[ApiKeyInfo]:
    return page([ApiKeyInfo.model_validate(k) for k in tenants.list_keys(session, tenant_id)], False)


@router.delete("/tenants/{tenant_id}/api_keys/{key_id}")
def revoke_key(tenant_id: str, key_id: str, session: SessionDep, admin: AdminDep) -> ApiKeyInfo:
    return ApiKeyInfo.model_validate(tenants.revoke_key(session, admin, tenant_id, key_id))


@router.get("/audit_events")
def audit_events(
    session: SessionDep, _: AdminDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> Page[AuditObject]:
    return page([AuditObject.model_validate(e) for e in tenants.audit_log(session, limit)], False)
