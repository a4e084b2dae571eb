"""Shared fixtures: a configured Keel stack per backend (embedded SQLite or PostgreSQL + Redis)."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get("KEEL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("KEEL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRE_STACK = os.environ.get("KEEL_TEST_REQUIRE_STACK") == "1"


def _stack_available() -> str | None:
    import redis
    import sqlalchemy as sa

    try:
        sa.create_engine(PG_ADMIN_URL).connect().close()
        redis.Redis.from_url(REDIS_URL).ping()
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"
    return None


def _create_pg_db() -> tuple[str, str]:
    import sqlalchemy as sa

    name = f"keel_test_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return name, PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def _drop_pg_db(name: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def configure(env: dict[str, str]) -> None:
    from core.db import reset_caches
    from core.queue import celery_app

    os.environ.update(env)
    reset_caches()
    celery_app.cache_clear()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def stack(request, tmp_path_factory) -> dict:
    """Environment of one backend, migrated with Alembic. Yields the env dict (for worker subprocesses)."""
    root = tmp_path_factory.mktemp(f"keel-{request.param}")
    env = {"KEEL_DATA_DIR": str(root / "data"), "KEEL_STORE_DIR": str(root / "store"),
           "KEEL_JOB_LEASE_S": "6", "KEEL_HEARTBEAT_S": "1", "KEEL_REAPER_INTERVAL_S": "1",
           "KEEL_SAFETY_EVAL_SIZE": "24", "KEEL_METRICS_EVERY_S": "0"}
    dbname = None
    if request.param == "postgres":
        problem = _stack_available()
        if problem:
            if REQUIRE_STACK:
                pytest.fail(f"PostgreSQL/Redis required but unavailable: {problem}")
            pytest.skip(f"PostgreSQL/Redis unavailable: {problem}")
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
        dbname, url = _create_pg_db()
        env.update(KEEL_DATABASE_URL=url, KEEL_BROKER_URL=REDIS_URL)
    else:
        env.update(KEEL_DATABASE_URL="", KEEL_BROKER_URL="")
    configure(env)
    from core.bootstrap import migrate

    Path(env["KEEL_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    migrate()
    yield {**env, "backend": request.param}
    from core.db import reset_caches

    reset_caches()
    if dbname:
        _drop_pg_db(dbname)


@pytest.fixture(scope="session")
def micro(tmp_path_factory) -> dict[str, str]:
    from tests.factories import build_micro_model

    return build_micro_model(tmp_path_factory.mktemp("micro"))
