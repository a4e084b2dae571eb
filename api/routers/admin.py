"""Admin endpoints: base models, safety-mask versions, tenants and API keys."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AdminDep, SessionDep
from api.schemas.common import ERRORS, Page, page
from api.schemas.models import ApiKeyObject, BaseModelAdmin, MaskObject, TenantObject
from core.base_models import service as svc
from core.base_models.schemas import BaseModelCreate, MaskCreate
from core.files.service import get_file, read_file_bytes
from core.queue import COMPUTE_MASKS, send_after_commit
from core.tenants.schemas import TenantCreate
from core.tenants.service import create_key, create_tenant

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
def new_tenant(body: TenantCreate, session: SessionDep, _: AdminDep) -> TenantObject:
    tenant, key = create_tenant(session, body.name, role=body.role)
    return TenantObject(id=tenant.id, name=tenant.name, api_key=key, role=body.role)


@router.post("/tenants/{tenant_id}/api_keys")
def new_key(tenant_id: str, body: TenantCreate, session: SessionDep, _: AdminDep) -> ApiKeyObject:
    row, key = create_key(session, tenant_id, role=body.role, name=body.name)
    return ApiKeyObject(id=row.id, tenant_id=tenant_id, api_key=key, role=row.role)
