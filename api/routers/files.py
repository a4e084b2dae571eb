"""OpenAI Files API (fine-tune purpose) with Keel's line-numbered validation report on the file object."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Query, UploadFile
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from api.deps import PrincipalDep, SessionDep
from api.pools import in_validation_pool
from api.schemas.common import ERRORS, ErrorResponse, IdPage, id_page
from api.schemas.files import FileDeleted, FileObject
from core.files import service as svc
from core.files.states import UPLOADABLE
from core.jobs import service as jobs

router = APIRouter(prefix="/v1/files", tags=["files"], responses=ERRORS)


@router.post("", responses={413: {"model": ErrorResponse, "description": "File over the upload limit"}})
async def upload(
    session: SessionDep,
    principal: PrincipalDep,
    file: UploadFile,
    purpose: Annotated[str, Form(json_schema_extra={"enum": list(UPLOADABLE)})],
    model: Annotated[str | None, Form()] = None,
) -> FileObject:
    """Runs in the validation pool (api.pools), not the request thread pool: the upload is copied to the
    store in chunks and validated line by line."""
    name = file.filename or "upload.jsonl"
    row = await in_validation_pool(svc.create_file, session, principal.tenant_id, name, purpose, file.file, model)
    return FileObject.model_validate(row)


@router.get("")
def list_files(
    session: SessionDep,
    principal: PrincipalDep,
    purpose: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 10000,
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
) -> IdPage[FileObject]:
    rows, more = svc.list_files(session, principal.tenant_id, purpose, limit, order, after)
    return id_page([FileObject.model_validate(r) for r in rows], more, [r.id for r in rows])


@router.get("/{file_id}")
def retrieve(file_id: str, session: SessionDep, principal: PrincipalDep) -> FileObject:
    return FileObject.model_validate(svc.get_file(session, principal.tenant_id, file_id))


@router.get(
    "/{file_id}/content",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def content(file_id: str, session: SessionDep, principal: PrincipalDep) -> StreamingResponse:
    row = svc.get_file(session, principal.tenant_id, file_id)
    fh = svc.open_content(row)
    chunks = iter(lambda: fh.read(1 << 20), b"")
    return StreamingResponse(
        chunks,
        media_type="application/octet-stream",
        background=BackgroundTask(fh.close),
        headers={"Content-Length": str(row.bytes)},
    )


@router.delete("/{file_id}")
def delete(file_id: str, session: SessionDep, principal: PrincipalDep) -> FileDeleted:
    svc.delete_file(session, principal.tenant_id, file_id, used_by=jobs.active_job_using)
    return FileDeleted(id=file_id)
