"""OpenAI Models API: base models plus the tenant's own fine-tuned models."""
from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from api.deps import PrincipalDep, SessionDep, page
from core.errors import NotFound
from core.orm import BaseModel, Job

router = APIRouter(prefix="/v1/models", tags=["models"])


def _rows(session: SessionDep, tenant_id: str) -> list[dict]:
    out = [{"id": m.id, "object": "model", "created": m.created_at, "owned_by": m.owned_by}
           for m in session.scalars(select(BaseModel).order_by(BaseModel.created_at, BaseModel.id))]
    jobs = session.scalars(select(Job).where(Job.tenant_id == tenant_id, Job.status == "succeeded")
                           .order_by(Job.finished_at))
    out += [{"id": j.fine_tuned_model, "object": "model", "created": j.finished_at, "owned_by": tenant_id,
             "parent": j.model, "fine_tuning_job_id": j.id} for j in jobs]
    return out


@router.get("")
def list_models(session: SessionDep, principal: PrincipalDep) -> dict:
    return page(_rows(session, principal.tenant_id), False)


@router.get("/{model_id:path}")
def retrieve(model_id: str, session: SessionDep, principal: PrincipalDep) -> dict:
    for row in _rows(session, principal.tenant_id):
        if row["id"] == model_id:
            return row
    raise NotFound("model", model_id, param="model")
