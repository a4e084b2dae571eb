"""Queries on uploaded files."""

from __future__ import annotations

from sqlalchemy import delete as sa_delete
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.files.models import File, UploadLedger
from core.files.states import Purpose
from core.pagination import after_cursor, fetch_page


def get(session: Session, file_id: str) -> File | None:
    return session.get(File, file_id)


def page(
    session: Session, tenant_id: str, purpose: str | None, limit: int, descending: bool, cursor: File | None
) -> tuple[list[File], bool]:
    q = select(File).where(File.tenant_id == tenant_id)
    if purpose:
        q = q.where(File.purpose == purpose)
    key = (cursor.created_at, cursor.id) if cursor else None
    return fetch_page(session, after_cursor(q, File.created_at, File.id, key, descending), limit)


def add(session: Session, row: File) -> None:
    session.add(row)
    session.flush()


def delete(session: Session, row: File) -> None:
    session.delete(row)
    session.flush()


def by_storage_key(session: Session, tenant_id: str, key: str) -> File | None:
    return session.scalar(select(File).where(File.tenant_id == tenant_id, File.storage_key == key))


def bytes_since(session: Session, tenant_id: str, since: int) -> int:
    """Bytes the tenant uploaded since ``since``, deleted files included (the upload ledger)."""
    q = select(func.coalesce(func.sum(UploadLedger.bytes), 0)).where(
        UploadLedger.tenant_id == tenant_id, UploadLedger.created_at >= since
    )
    return int(session.scalar(q) or 0)


def record_upload(session: Session, tenant_id: str, size: int) -> None:
    session.add(UploadLedger(tenant_id=tenant_id, bytes=size))


def prune_ledger(session: Session, before: int) -> int:
    res = session.execute(sa_delete(UploadLedger).where(UploadLedger.created_at < before))
    return int(getattr(res, "rowcount", 0) or 0)


def usage(session: Session, tenant_id: str) -> tuple[int, int]:
    """(bytes stored in all the tenant's files, number of files it uploaded)."""
    stored = session.scalar(select(func.coalesce(func.sum(File.bytes), 0)).where(File.tenant_id == tenant_id))
    uploaded = session.scalar(
        select(func.count(File.id)).where(File.tenant_id == tenant_id, File.purpose != Purpose.FINE_TUNE_RESULTS)
    )
    return int(stored or 0), int(uploaded or 0)


def referenced_keys(session: Session, keys: list[str]) -> set[str]:
    """Those of ``keys`` that a row names as its stored bytes."""
    return set(session.scalars(select(File.storage_key).where(File.storage_key.in_(keys))))
