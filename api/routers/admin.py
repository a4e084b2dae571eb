"""Admin endpoints: base models, safety-mask versions, tenants and API keys."""
from __future__ import annotations

import logging

from fastapi import APIRouter
from sqlalchemy import select

from api.deps import AdminDep, SessionDep, page
from core import models as svc
from core.auth import create_key, create_tenant
from core.errors import NotFound
from core.files import get_file, read_file_bytes
from core.orm import BaseModel, SafetyMask, Tenant
from core.queue import COMPUTE_MASKS, send
from core.schemas import BaseModelCreate, MaskCreate, TenantCreate

router = APIRouter(prefix="/v1/admin", tags=["admin"])
log = logging.getLogger("keel.api")


@router.post("/base_models")
def register_model(body: BaseModelCreate, session: SessionDep, _: AdminDep) -> dict:
    return svc.model_object(session, svc.register_model(session, body))


@router.get("/base_models")
def list_models(session: SessionDep, _: AdminDep) -> dict:
    rows = session.scalars(select(BaseModel).order_by(BaseModel.created_at, BaseModel.id)).all()
    return page([svc.model_object(session, m) for m in rows], False)


@router.get("/base_models/{model_id:path}/safety_masks")
def list_masks(model_id: str, session: SessionDep, _: AdminDep) -> dict:
    svc.require_model(session, model_id)
    rows = session.scalars(select(SafetyMask).where(SafetyMask.base_model_id == model_id)
                           .order_by(SafetyMask.version.desc())).all()
    return page([svc.mask_object(m) for m in rows], False)


@router.post("/base_models/{model_id:path}/safety_masks")
def recompute_masks(model_id: str, body: MaskCreate, session: SessionDep, admin: AdminDep) -> dict:
    model = svc.require_model(session, model_id)
    corpus = read_file_bytes(get_file(session, admin.tenant_id, body.corpus_file, "corpus_file")) \
        if body.corpus_file else None
    row = svc.create_mask(session, model, body, corpus)
    session.commit()
    try:
        send(COMPUTE_MASKS, row.id)
    except Exception:
        log.exception("could not reach the broker for mask %s", row.id)
    return svc.mask_object(row)


@router.get("/base_models/{model_id:path}")
def get_model(model_id: str, session: SessionDep, _: AdminDep) -> dict:
    return svc.model_object(session, svc.require_model(session, model_id))


@router.post("/tenants")
def new_tenant(body: TenantCreate, session: SessionDep, _: AdminDep) -> dict:
    tenant, key = create_tenant(session, body.name, role=body.role)
    return {"object": "tenant", "id": tenant.id, "name": tenant.name, "api_key": key, "role": body.role}


@router.post("/tenants/{tenant_id}/api_keys")
def new_key(tenant_id: str, body: TenantCreate, session: SessionDep, _: AdminDep) -> dict:
    if session.get(Tenant, tenant_id) is None:
        raise NotFound("tenant", tenant_id, param="tenant_id")
    row, key = create_key(session, tenant_id, role=body.role, name=body.name)
    return {"object": "api_key", "id": row.id, "tenant_id": tenant_id, "api_key": key, "role": row.role}
