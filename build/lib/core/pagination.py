"""OpenAI-style cursor pagination over (created_at, id)-ordered tables, done in SQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

T = TypeVar("T")


def after_cursor(
    query: Select[Any],
    created: InstrumentedAttribute[int],
    ident: InstrumentedAttribute[str],
    cursor: tuple[int, str] | None,
    descending: bool = True,
) -> Select[Any]:
    """Order by (created, id) and, given the cursor row's key, keep only rows strictly past it."""
    if cursor is not None:
        t, i = cursor
        if descending:
            query = query.where(or_(created < t, and_(created == t, ident < i)))
        else:
            query = query.where(or_(created > t, and_(created == t, ident > i)))
    order = (created.desc(), ident.desc()) if descending else (created.asc(), ident.asc())
    return query.order_by(*order)


def fetch_page(session: Session, query: Select[Any], limit: int) -> tuple[list[Any], bool]:
    """Run ``query`` for one page: (rows, has_more), fetching one extra row to know if more exist."""
    rows: Sequence[Any] = session.scalars(query.limit(limit + 1)).all()
    return list(rows[:limit]), len(rows) > limit
