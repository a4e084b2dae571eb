"""Queries on base models and safety-mask versions."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from core.base_models.models import BaseModelRecord, SafetyMask
from core.base_models.states import CLAIMABLE, MaskStatus
from core.ids import now


def get(session: Session, model_id: str) -> BaseModelRecord | None:
    return session.get(BaseModelRecord, model_id)


def all_models(session: Session) -> list[BaseModelRecord]:
    return list(session.scalars(select(BaseModelRecord).order_by(BaseModelRecord.created_at, BaseModelRecord.id)))


def add(session: Session, row: BaseModelRecord | SafetyMask) -> None:
    session.add(row)
    session.flush()


def get_mask(session: Session, mask_id: str) -> SafetyMask | None:
    return session.get(SafetyMask, mask_id)


def masks_of(session: Session, model_id: str) -> list[SafetyMask]:
    return list(
        session.scalars(
            select(SafetyMask).where(SafetyMask.base_model_id == model_id).order_by(SafetyMask.version.desc())
        )
    )


def newest_mask(session: Session, model_id: str, statuses: frozenset[MaskStatus]) -> SafetyMask | None:
    return session.scalar(
        select(SafetyMask)
        .where(SafetyMask.base_model_id == model_id, SafetyMask.status.in_(list(statuses)))
        .order_by(SafetyMask.version.desc())
        .limit(1)
    )


def next_version(session: Session, model_id: str) -> int:
    top = session.scalar(select(func.max(SafetyMask.version)).where(SafetyMask.base_model_id == model_id))
    return (top or 0) + 1


def _expired(t: int) -> ColumnElement[bool]:
    """A running version whose computing worker stopped renewing (no lease at all: written before leases)."""
    return and_(
        SafetyMask.status == MaskStatus.RUNNING,
        or_(SafetyMask.lease_expires_at.is_(None), SafetyMask.lease_expires_at < t),
    )


def claim_mask(session: Session, mask_id: str, owner: str, lease_s: int) -> bool:
    """queued/failed → running, or take over a running version whose lease expired; one caller wins."""
    t = now()
    res = session.execute(
        update(SafetyMask)
        .where(SafetyMask.id == mask_id, or_(SafetyMask.status.in_(list(CLAIMABLE)), _expired(t)))
        .values(status=MaskStatus.RUNNING, lease_owner=owner, lease_expires_at=t + lease_s)
    )
    return bool(getattr(res, "rowcount", 0) == 1)


def renew_mask(session: Session, mask_id: str, owner: str, lease_s: int) -> bool:
    res = session.execute(
        update(SafetyMask)
        .where(SafetyMask.id == mask_id, SafetyMask.status == MaskStatus.RUNNING, SafetyMask.lease_owner == owner)
        .values(lease_expires_at=now() + lease_s)
    )
    return bool(getattr(res, "rowcount", 0) == 1)


def finish_mask(session: Session, mask_id: str, owner: str, **values: object) -> bool:
    """running → ready/failed by the lease owner only; False if the version was taken over."""
    res = session.execute(
        update(SafetyMask)
        .where(SafetyMask.id == mask_id, SafetyMask.status == MaskStatus.RUNNING, SafetyMask.lease_owner == owner)
        .values(finished_at=now(), lease_owner=None, lease_expires_at=None, **values)
    )
    return bool(getattr(res, "rowcount", 0) == 1)


def mark_broken(session: Session, mask_id: str, error: str) -> bool:
    q = (
        update(SafetyMask)
        .where(SafetyMask.id == mask_id, SafetyMask.status == MaskStatus.READY)
        .values(status=MaskStatus.BROKEN, error=error, lease_owner=None, lease_expires_at=None)
    )
    return bool(getattr(session.execute(q), "rowcount", 0) == 1)


def requeue_expired_masks(session: Session, t: int) -> list[str]:
    """Running versions whose lease expired go back to queued; returns their ids."""
    ids = list(session.scalars(select(SafetyMask.id).where(_expired(t))))
    if ids:
        session.execute(
            update(SafetyMask)
            .where(SafetyMask.id.in_(ids), _expired(t))
            .values(status=MaskStatus.QUEUED, lease_owner=None, lease_expires_at=None)
        )
    return ids


def referenced_keys(session: Session, keys: list[str]) -> set[str]:
    """Those of ``keys`` that a row names as its stored bytes."""
    return set(session.scalars(select(SafetyMask.storage_key).where(SafetyMask.storage_key.in_(keys))))
