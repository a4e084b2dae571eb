"""Files service: upload with line-numbered validation, list/retrieve/delete, tenant-scoped."""
from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.config import get_settings
from core.errors import Conflict, InvalidRequest, NotFound
from core.orm import BaseModel, File, Job, new_id
from core.validation import load_tokenizer, validate_jsonl
from models_store import get_store
from models_store.local import file_key

PURPOSES = ("fine-tune", "safety-corpus")
ACTIVE = ("validating_files", "queued", "running")


def tokenizer_for(session: Session, model_id: str | None):  # noqa: ANN201
    """Tokenizer and context length of a registered base model (None, None if unknown)."""
    model = session.get(BaseModel, model_id) if model_id else None
    if model is None:
        return None, None
    return load_tokenizer(model.path), model.context_length


def create_file(session: Session, tenant_id: str, filename: str, purpose: str, data: bytes,
                model_id: str | None = None) -> File:
    if purpose not in PURPOSES:
        raise InvalidRequest(f"purpose must be one of {', '.join(PURPOSES)}", param="purpose")
    if len(data) > get_settings().max_upload_bytes:
        raise InvalidRequest("file exceeds the maximum upload size", param="file", code="file_too_large")
    tokenizer, context = tokenizer_for(session, model_id or get_settings().default_model)
    report = validate_jsonl(data, tokenizer, context)
    report["tokenized_with"] = model_id or get_settings().default_model if tokenizer is not None else None
    file_id = new_id("file-")
    key = file_key(tenant_id, file_id)
    get_store(get_settings().store_dir).put_bytes(key, data)
    row = File(
        id=file_id, tenant_id=tenant_id, filename=filename or "upload.jsonl", purpose=purpose, bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(), storage_key=key,
        status="processed" if report["valid"] else "error",
        status_details=None if report["valid"] else _summary(report), validation=report,
    )
    session.add(row)
    return row


def _summary(report: dict) -> str:
    first = report["errors"][0]
    where = f"line {first['line']}: " if first["line"] else ""
    return f"{report['n_errors']} invalid line(s); first: {where}{first['message']}"


def get_file(session: Session, tenant_id: str, file_id: str, param: str = "file_id") -> File:
    row = session.get(File, file_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound("file", file_id, param=param)
    return row


def list_files(session: Session, tenant_id: str, purpose: str | None, limit: int, order: str,
               after: str | None) -> tuple[list[File], bool]:
    q = select(File).where(File.tenant_id == tenant_id)
    if purpose:
        q = q.where(File.purpose == purpose)
    desc = order != "asc"
    if after:
        cursor = get_file(session, tenant_id, after, param="after")
        key = (cursor.created_at, cursor.id)
        cmp = (File.created_at < key[0]) | ((File.created_at == key[0]) & (File.id < key[1])) if desc else \
              (File.created_at > key[0]) | ((File.created_at == key[0]) & (File.id > key[1]))
        q = q.where(cmp)
    q = q.order_by(File.created_at.desc(), File.id.desc()) if desc else q.order_by(File.created_at, File.id)
    rows = list(session.scalars(q.limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def delete_file(session: Session, tenant_id: str, file_id: str) -> None:
    row = get_file(session, tenant_id, file_id)
    in_use = session.scalar(select(Job.id).where(
        Job.status.in_(ACTIVE), (Job.training_file == file_id) | (Job.validation_file == file_id)).limit(1))
    if in_use:
        raise Conflict(f"File '{file_id}' is used by active job '{in_use}'; cancel it first.", code="file_in_use")
    session.delete(row)
    session.flush()
    get_store(get_settings().store_dir).delete(row.storage_key)


def read_file_bytes(row: File) -> bytes:
    return get_store(get_settings().store_dir).path(row.storage_key).read_bytes()


def file_object(row: File) -> dict:
    return {
        "id": row.id, "object": "file", "bytes": row.bytes, "created_at": row.created_at, "expires_at": None,
        "filename": row.filename, "purpose": row.purpose, "status": row.status,
        "status_details": row.status_details, "validation": row.validation,
    }
