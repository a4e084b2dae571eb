"""Files service: upload with line-numbered validation, list/retrieve/delete, tenant-scoped.

Store/DB ordering: an upload writes its bytes before the row is flushed and removes them again if the
unit of work fails; a delete removes the row first and the bytes only after the commit succeeded.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy.orm import Session

from core.base_models import repository as models_repo
from core.config import get_settings
from core.db import on_commit, on_rollback
from core.errors import Conflict, InvalidRequest, NotFound
from core.files import repository as repo
from core.files.models import File
from core.files.states import FileStatus, Purpose
from core.files.validation import load_tokenizer, validate_jsonl
from core.ids import new_id
from core.storage import get_store
from models_store import file_key


def tokenizer_for(session: Session, model_id: str | None) -> tuple[Any, int | None]:
    """Tokenizer and context length of a registered base model ((None, None) if unknown)."""
    model = models_repo.get(session, model_id) if model_id else None
    if model is None:
        return None, None
    return load_tokenizer(model.path), model.context_length


def create_file(
    session: Session, tenant_id: str, filename: str, purpose: str, data: bytes, model_id: str | None = None
) -> File:
    if purpose not in set(Purpose):
        raise InvalidRequest(f"purpose must be one of {', '.join(Purpose)}", param="purpose")
    if len(data) > get_settings().max_upload_bytes:
        raise InvalidRequest("file exceeds the maximum upload size", param="file", code="file_too_large")
    counted_with = model_id or get_settings().default_model
    tokenizer, context = tokenizer_for(session, counted_with)
    report = validate_jsonl(data, tokenizer, context)
    report["tokenized_with"] = counted_with if tokenizer is not None else None
    file_id = new_id("file-")
    key = file_key(tenant_id, file_id)
    store = get_store()
    store.put_bytes(key, data)
    on_rollback(session, lambda: store.delete(key))
    row = File(
        id=file_id,
        tenant_id=tenant_id,
        filename=filename or "upload.jsonl",
        purpose=purpose,
        bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        storage_key=key,
        status=FileStatus.PROCESSED if report["valid"] else FileStatus.ERROR,
        status_details=None if report["valid"] else _summary(report),
        validation=report,
    )
    repo.add(session, row)
    return row


def _summary(report: dict[str, Any]) -> str:
    first = report["errors"][0]
    where = f"line {first['line']}: " if first["line"] else ""
    return f"{report['n_errors']} invalid line(s); first: {where}{first['message']}"


def get_file(session: Session, tenant_id: str, file_id: str, param: str = "file_id") -> File:
    row = repo.get(session, file_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound("file", file_id, param=param)
    return row


def list_files(
    session: Session, tenant_id: str, purpose: str | None, limit: int, order: str, after: str | None
) -> tuple[list[File], bool]:
    cursor = get_file(session, tenant_id, after, param="after") if after else None
    return repo.page(session, tenant_id, purpose, limit, order != "asc", cursor)


def delete_file(session: Session, tenant_id: str, file_id: str) -> None:
    row = get_file(session, tenant_id, file_id)
    in_use = repo.active_job_using(session, file_id)
    if in_use:
        raise Conflict(f"File '{file_id}' is used by active job '{in_use}'; cancel it first.", code="file_in_use")
    key = row.storage_key
    repo.delete(session, row)
    on_commit(session, lambda: get_store().delete(key))


def read_file_bytes(row: File) -> bytes:
    return get_store().get_bytes(row.storage_key)
