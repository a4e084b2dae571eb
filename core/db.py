"""Engine, sessions and the declarative base shared by the API, the workers and Alembic."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, MetaData, create_engine, event, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from core.config import get_settings

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONType = JSON().with_variant(JSONB(), "postgresql")

log = logging.getLogger("keel.db")


def _finite(value: Any, path: str, bad: list[str]) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        bad.append(f"{path or '.'}={value}")
        return None
    if isinstance(value, dict):
        return {k: _finite(v, f"{path}.{k}", bad) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v, f"{path}[{i}]", bad) for i, v in enumerate(value)]
    return value


def finite_json(value: Any) -> Any:
    """``value`` with every NaN/Infinity float replaced by None (logged once per value)."""
    bad: list[str] = []
    out = _finite(value, "", bad)
    if bad:
        log.warning("non-finite floats stored as null in a JSON column: %s", ", ".join(bad[:10]))
    return out


def dumps_json(value: Any) -> str:
    """The one serializer of every JSON column (the engine's ``json_serializer``): NaN/Infinity become null,
    so a metric that is not a number is stored as "unknown" instead of failing the transaction (PostgreSQL's
    JSONB rejects the literal ``NaN`` that ``json.dumps`` writes)."""
    return json.dumps(finite_json(value), allow_nan=False)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, json_serializer=dumps_json
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=30000")
            if cur.execute("PRAGMA journal_mode").fetchone()[0] != "wal":  # persistent: set once per file
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10, json_serializer=dumps_json)


@lru_cache
def get_engine() -> Engine:
    return make_engine(get_settings().db_url)


@lru_cache
def _factory() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


def new_session() -> Session:
    return _factory()()


@contextmanager
def session_scope() -> Iterator[Session]:
    """A unit of work: commit on success, roll back on any exception."""
    session = new_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def ping(session: Session) -> None:
    session.execute(text("SELECT 1"))


def database_ready() -> bool:
    """The database answers a trivial query (readiness)."""
    try:
        with session_scope() as session:
            ping(session)
    except SQLAlchemyError:
        return False
    return True


_ON_COMMIT, _ON_ROLLBACK = "keel_on_commit", "keel_on_rollback"


def on_commit(session: Session, action: Callable[[], None]) -> None:
    """Run ``action`` after ``session``'s unit of work commits; dropped if it rolls back."""
    session.info.setdefault(_ON_COMMIT, []).append(action)


def on_rollback(session: Session, action: Callable[[], None]) -> None:
    """Run ``action`` if ``session``'s unit of work rolls back (undo side effects such as stored bytes)."""
    session.info.setdefault(_ON_ROLLBACK, []).append(action)


@event.listens_for(Session, "after_commit")
def _run_on_commit(session: Session) -> None:
    session.info.pop(_ON_ROLLBACK, None)
    for action in session.info.pop(_ON_COMMIT, []):
        action()


@event.listens_for(Session, "after_soft_rollback")
def _run_on_rollback(session: Session, _previous: Any) -> None:
    session.info.pop(_ON_COMMIT, None)
    for action in session.info.pop(_ON_ROLLBACK, []):
        action()


def reset_caches() -> None:
    """Forget cached settings/engine (tests switch databases between modules)."""
    if _factory.cache_info().currsize:
        get_engine().dispose()
    _factory.cache_clear()
    get_engine.cache_clear()
    get_settings.cache_clear()
