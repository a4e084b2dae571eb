"""Files service: upload with line-numbered validation, list/retrieve/delete, tenant-scoped.

Store/DB ordering: an upload writes its bytes before the row is flushed and removes them again if the
unit of work fails; a delete removes the row first and the bytes only after the commit succeeded.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from sqlalchemy.orm import Session

from core import signals
from core.base_models import repository as models_repo
from core.config import get_settings
from core.db import on_commit, on_rollback
from core.errors import Conflict, InvalidRequest, NotFound, PayloadTooLarge, PermissionDenied, RateLimited
from core.files import repository as repo
from core.files.models import File
from core.files.states import UPLOADABLE, FileStatus, Purpose
from core.files.validation import load_tokenizer, validate_stream
from core.ids import new_id, now
from core.storage import get_store
from models_store import Store, file_key


def tokenizer_for(session: Session, model_id: str | None) -> tuple[Any, int | None]:
    """Tokenizer and context length of a registered base model ((None, None) if unknown)."""
    model = models_repo.get(session, model_id) if model_id else None
    if model is None:
        return None, None
    return load_tokenizer(model.path), model.context_length


MAX_FILENAME = 500


def _check_fields(session: Session, filename: str, purpose: str, model_id: str | None) -> None:
    for param, value in (("file", filename), ("purpose", purpose), ("model", model_id or "")):
        if "\x00" in value:
            raise InvalidRequest(f"{param} must not contain NUL characters", param=param)
    if len(filename) > MAX_FILENAME:
        raise InvalidRequest(f"filename is longer than {MAX_FILENAME} characters", param="file")
    if purpose not in UPLOADABLE:
        raise InvalidRequest(f"purpose must be one of {', '.join(UPLOADABLE)}", param="purpose")
    if model_id and models_repo.get(session, model_id) is None:
        raise InvalidRequest(f"No base model '{model_id}' to count tokens with.", param="model", code="model_not_found")


def _copy(stream: BinaryIO, store: Store, key: str, limit: int) -> tuple[int, str]:
    """Stream the upload into the store in chunks, enforcing the size limit while reading."""
    digest, size = hashlib.sha256(), 0

    def chunks() -> Iterator[bytes]:
        nonlocal size
        while chunk := stream.read(1 << 20):
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"file exceeds the maximum upload size of {limit} bytes", param="file")
            digest.update(chunk)
            yield chunk

    store.put_stream(key, chunks())
    return size, digest.hexdigest()


def _check_quotas(session: Session, tenant_id: str, size: int) -> None:
    """Bytes uploaded in 24 h (deleted files included: the ledger), bytes stored, files kept."""
    s = get_settings()
    used = repo.bytes_since(session, tenant_id, now() - 86_400)
    if used + size > s.max_upload_bytes_per_day:
        raise RateLimited(
            f"This upload would exceed the organization's {s.max_upload_bytes_per_day} bytes per 24 hours "
            f"({used} used; deleting files does not give them back).",
            retry_after_s=3600,
            code="upload_quota_exceeded",
        )
    stored, files = repo.usage(session, tenant_id)
    if stored + size > s.max_stored_bytes_per_tenant:
        raise PermissionDenied(
            f"This upload would exceed the organization's {s.max_stored_bytes_per_tenant} stored bytes ({stored} "
            "stored); delete files first.",
            code="storage_quota_exceeded",
        )
    if files + 1 > s.max_files_per_tenant:
        raise PermissionDenied(
            f"The organization keeps {files} files, the most allowed is {s.max_files_per_tenant}; delete some first.",
            code="too_many_files",
        )


def create_file(
    session: Session, tenant_id: str, filename: str, purpose: str, stream: BinaryIO, model_id: str | None = None
) -> File:
    """Store the bytes, then validate them line by line (tokens counted only when ``model`` is given).
    If the unit of work fails afterwards, the stored bytes are removed again."""
    filename = filename or "upload.jsonl"
    _check_fields(session, filename, purpose, model_id)
    tokenizer, context = tokenizer_for(session, model_id)
    file_id = new_id("file-")
    key, store = file_key(tenant_id, file_id), get_store()
    size, sha = _copy(stream, store, key, get_settings().max_upload_bytes)
    on_rollback(session, lambda: store.delete(key))
    _check_quotas(session, tenant_id, size)
    repo.record_upload(session, tenant_id, size)
    with store.open(key) as fh:
        report = validate_stream(fh, tokenizer, context)
    report["tokenized_with"] = model_id if tokenizer is not None else None
    if tokenizer is not None:
        report["tokens_by_model"] = {model_id: report["tokens"]}
    row = File(
        id=file_id,
        tenant_id=tenant_id,
        filename=filename,
        purpose=purpose,
        bytes=size,
        sha256=sha,
        storage_key=key,
        status=FileStatus.PROCESSED if report["valid"] else FileStatus.ERROR,
        status_details=None if report["valid"] else _summary(report),
        validation=report,
    )
    repo.add(session, row)
    signals.file_uploaded.send(session, size)
    return row


class _InvalidReports:
    """Reports of files found invalid for a model, per API process (LRU, ``size`` entries): the request that
    finds a file invalid rolls back, so the row cannot keep them, and an invalid file must not be tokenized
    again on every retry. One computation per (file, model) at a time; the others wait for it."""

    def __init__(self, size: int = 1024) -> None:
        self.size, self._lock = size, threading.Lock()
        self._reports: OrderedDict[tuple[str, ...], dict[str, Any]] = OrderedDict()
        self._computing: dict[tuple[str, ...], threading.Lock] = {}

    def get_or_compute(self, key: tuple[str, ...], compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            flight = self._computing.setdefault(key, threading.Lock())
        with flight:
            with self._lock:
                if key in self._reports:
                    self._reports.move_to_end(key)
                    return self._reports[key]
            try:
                report = compute()
            finally:
                with self._lock:
                    self._computing.pop(key, None)
            with self._lock:
                if not report["valid"]:
                    self._reports[key] = report
                    while len(self._reports) > self.size:
                        self._reports.popitem(last=False)
            return report


INVALID_REPORTS = _InvalidReports()


def token_stats(session: Session, row: File, model_id: str) -> dict[str, Any]:
    """The file's validation report with token statistics for ``model_id``, counted once per model: kept on
    the row when valid (a retried or second job creation does not tokenize again), in this process's
    :data:`INVALID_REPORTS` when invalid (a repeated invalid dry run does not tokenize again either)."""
    cached = row.validation.get("tokens_by_model", {}).get(model_id)
    if cached is not None:
        return {**row.validation, "tokens": cached, "tokenized_with": model_id}
    model = models_repo.get(session, model_id)
    version = f"{model.path}:{model.context_length}" if model is not None else ""
    key = (row.id, row.sha256, model_id, version)

    def compute() -> dict[str, Any]:
        tokenizer, context = tokenizer_for(session, model_id)
        with get_store().open(row.storage_key) as fh:
            return validate_stream(fh, tokenizer, context)

    report = INVALID_REPORTS.get_or_compute(key, compute)
    if report["valid"]:
        by_model = {**row.validation.get("tokens_by_model", {}), model_id: report["tokens"]}
        row.validation = {**row.validation, "tokens_by_model": by_model}
    return {**report, "tokenized_with": model_id}


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


def delete_file(session: Session, tenant_id: str, file_id: str, used_by: Callable[[Session, str], str | None]) -> None:
    """Delete the file unless ``used_by`` (the jobs domain's question, asked here so that files need not know
    jobs) names an active job that reads it."""
    row = get_file(session, tenant_id, file_id)
    in_use = used_by(session, file_id)
    if in_use:
        raise Conflict(f"File '{file_id}' is used by active job '{in_use}'; cancel it first.", code="file_in_use")
    key, owned = row.storage_key, row.purpose != Purpose.FINE_TUNE_RESULTS  # a job artifact owns result bytes
    repo.delete(session, row)
    if owned:
        on_commit(session, lambda: get_store().delete(key))


def register_result(session: Session, tenant_id: str, filename: str, key: str, size: int, sha256: str) -> File:
    """A job's stored result (its adapter bundle) as a file of the tenant's; idempotent per storage key."""
    existing = repo.by_storage_key(session, tenant_id, key)
    if existing is not None:
        return existing
    row = File(
        id=new_id("file-"),
        tenant_id=tenant_id,
        filename=filename,
        purpose=Purpose.FINE_TUNE_RESULTS,
        bytes=size,
        sha256=sha256,
        storage_key=key,
        status=FileStatus.PROCESSED,
        validation={},
    )
    repo.add(session, row)
    return row


def open_content(row: File) -> BinaryIO:
    return get_store().open(row.storage_key)


def read_by_id(session: Session, file_id: str) -> bytes:
    """Bytes of a file named by a row the service itself wrote (a mask's corpus file), whatever its tenant."""
    row = repo.get(session, file_id)
    if row is None:
        raise NotFound("file", file_id)
    return read_file_bytes(row)


def read_file_bytes(row: File) -> bytes:
    return get_store().get_bytes(row.storage_key)
