"""Shared fixtures: a configured Keel stack per backend (embedded SQLite or PostgreSQL + Redis)."""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import tuning  # noqa: F401 (sets OMP_WAIT_POLICY before any test loads torch)

if TYPE_CHECKING:
    import redis

pytest_plugins = ["tests.fixtures.service"]  # client, keys: the running API per backend

PG_ADMIN_URL = os.environ.get("KEEL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


_CAS_DEL = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def _claim_redis_db(base: str = "redis://127.0.0.1:6379", ttl_s: int = 6 * 3600) -> str:
    """This run's own Redis DB, so concurrent runs never flush each other's broker.

    KEEL_TEST_REDIS_URL wins when set. Otherwise claim the first DB n in 1..15 with
    ``SET keel-test-lock:n <host>:<pid> NX EX ttl`` in DB 0 (taking over a lock whose process on this
    host is gone) and release it at exit. Redis unreachable: DB 15; the stack check reports the error.
    """
    if os.environ.get("KEEL_TEST_REDIS_URL"):
        return os.environ["KEEL_TEST_REDIS_URL"]
    import redis

    host = socket.gethostname()
    me = f"{host}:{os.getpid()}"
    try:
        r = redis.Redis.from_url(f"{base}/0", socket_connect_timeout=2, socket_timeout=5)
        for n in range(1, 16):
            key = f"keel-test-lock:{n}"
            owner = r.get(key)
            owner = owner.decode() if isinstance(owner, bytes) else str(owner or "")
            owner_host, _, owner_pid = owner.rpartition(":")
            if owner_host == host and owner_pid.isdigit() and not _pid_alive(int(owner_pid)):
                r.eval(_CAS_DEL, 1, key, f"{owner_host}:{owner_pid}")  # stale lock of a killed run here
            if r.set(key, me, nx=True, ex=ttl_s):
                atexit.register(_release_redis_db, r, key, me, os.getpid())
                return f"{base}/{n}"
    except redis.RedisError:
        return f"{base}/15"
    raise RuntimeError("Redis test DBs 1..15 are all claimed (keel-test-lock:* in DB 0); set KEEL_TEST_REDIS_URL")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _release_redis_db(r: redis.Redis, key: str, me: str, pid: int) -> None:
    if os.getpid() == pid:  # a forked child exiting must not free its parent's DB
        with contextlib.suppress(Exception):  # else the lock expires on its own
            r.eval(_CAS_DEL, 1, key, me)


REDIS_URL = _claim_redis_db()


def _own_metrics_dir() -> None:
    """This run's own Prometheus multiprocess directory (the API in-process and the worker subprocesses share
    it), set before anything imports core.observability.metrics; removed when the run ends."""
    import shutil
    import tempfile

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    path, pid = tempfile.mkdtemp(prefix="keel-test-metrics-"), os.getpid()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    atexit.register(lambda: os.getpid() == pid and shutil.rmtree(path, ignore_errors=True))


_own_metrics_dir()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``@pytest.mark.backends("postgres")``: run a stack-parametrized test on those backends only (worker
    behaviour that does not depend on the database, kept off the second backend to keep the suite short)."""
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("backends")
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("stack") if callspec else None
        (drop if marker and backend and backend not in marker.args else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


REQUIRE_STACK = os.environ.get("KEEL_TEST_REQUIRE_STACK") == "1"


def _stack_available() -> str | None:
    import redis
    import sqlalchemy as sa

    try:
        sa.create_engine(PG_ADMIN_URL).connect().close()
        redis.Redis.from_url(REDIS_URL).ping()
    except Exception as exc:
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


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def stack(request, tmp_path_factory) -> dict:
    """Environment of one backend, migrated with Alembic. Yields the env dict (for worker subprocesses)."""
    root = tmp_path_factory.mktemp(f"keel-{request.param}")
    env = {
        "KEEL_DATA_DIR": str(root / "data"),
        "KEEL_STORE_DIR": str(root / "store"),
        "KEEL_JOB_LEASE_S": "6",
        "KEEL_HEARTBEAT_S": "1",
        "KEEL_REAPER_INTERVAL_S": "1",
        "KEEL_SAFETY_EVAL_SIZE": "24",
        "KEEL_AUDIT_EVAL_SIZE": "24",
        "KEEL_RATE_LIMIT_RPS": "1000",  # the limiter has its own test; suites poll fast
        "KEEL_UNAUTH_RATE_LIMIT_RPS": "1000",  # likewise (tests/security/test_03_auth_before_body.py)
        "KEEL_METRICS_EVERY_S": "0",
    }
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
