"""OpenAI Files API (fine-tune purpose) with Keel's line-numbered validation report on the file object."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Query, UploadFile

from api.deps import PrincipalDep, SessionDep, page
from core import files as svc

router = APIRouter(prefix="/v1/files", tags=["files"])


@router.post("")
async def upload(session: SessionDep, principal: PrincipalDep, file: UploadFile,
                 purpose: Annotated[str, Form()], model: Annotated[str | None, Form()] = None) -> dict:
    data = await file.read()
    row = svc.create_file(session, principal.tenant_id, file.filename or "upload.jsonl", purpose, data, model)
    session.flush()
    return svc.file_object(row)


@router.get("")
def list_files(session: SessionDep, principal: PrincipalDep, purpose: str | None = None,
               limit: Annotated[int, Query(ge=1, le=10000)] = 10000,
               order: Literal["asc", "desc"] = "desc", after: str | None = None) -> dict:
    rows, more = svc.list_files(session, principal.tenant_id, purpose, limit, order, after)
    return page([svc.file_object(r) for r in rows], more, with_ids=True)


@router.get("/{file_id}")
def retrieve(file_id: str, session: SessionDep, principal: PrincipalDep) -> dict:
    return svc.file_object(svc.get_file(session, principal.tenant_id, file_id))


@router.delete("/{file_id}")
def delete(file_id: str, session: SessionDep, principal: PrincipalDep) -> dict:
    svc.delete_file(session, principal.tenant_id, file_id)
    return {"id": file_id, "object": "file", "deleted": True}
