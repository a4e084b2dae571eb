"""OpenAI Models API: base models plus the tenant's own fine-tuned models."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import PrincipalDep, SessionDep
from api.schemas.common import ERRORS, Page, page
from api.schemas.models import ModelObject
from core.base_models import service as models_svc
from core.errors import NotFound
from core.jobs import service as jobs_svc

router = APIRouter(prefix="/v1/models", tags=["models"], responses=ERRORS)


def _catalog(session: SessionDep, tenant_id: str, model: str | None = None) -> tuple[list[ModelObject], bool]:
    """Base models and the tenant's newest fine-tuned models (whether more exist); only ``model``'s when given."""
    jobs, more = jobs_svc.fine_tuned_models(session, tenant_id, model)
    out = [ModelObject(id=m.id, created=m.created_at, owned_by=m.owned_by) for m in models_svc.list_models(session)]
    out += [
        ModelObject(
            id=j.fine_tuned_model or "",
            created=j.finished_at or j.created_at,
            owned_by=tenant_id,
            parent=j.model,
            fine_tuning_job_id=j.id,
        )
        for j in jobs
    ]
    return out, more


@router.get("")
def list_models(session: SessionDep, principal: PrincipalDep) -> Page[ModelObject]:
    return page(*_catalog(session, principal.tenant_id))


@router.get("/{model_id:path}")
def retrieve(model_id: str, session: SessionDep, principal: PrincipalDep) -> ModelObject:
    for row in _catalog(session, principal.tenant_id, model_id)[0]:
        if row.id == model_id:
            return row
    raise NotFound("model", model_id, param="model")
