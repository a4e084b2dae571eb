"""Queries on base models and safety-mask versions."""

from __future__ import annotations

from sqlalchemy import func, select, update
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


def claim_mask(session: Session, mask_id: str) -> bool:
    """queued/failed → running; exactly one concurrent caller wins."""
    res = session.execute(
        update(SafetyMask)
        .where(SafetyMask.id == mask_id, SafetyMask.status.in_(list(CLAIMABLE)))
        .values(status=MaskStatus.RUNNING)
    )
    return bool(getattr(res, "rowcount", 0) == 1)


def finish_mask(session: Session, mask_id: str, **values: object) -> None:
    session.execute(
        update(SafetyMask)
        .where(SafetyMask.id == mask_id, SafetyMask.status == MaskStatus.RUNNING)
        .values(finished_at=now(), **values)
    )
