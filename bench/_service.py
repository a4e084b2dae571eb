"""A throwaway Keel API on loopback for bench scripts: own data dir, migrated, two tenants + an admin, the
micro test model registered, one uploaded file and one queued job (so ids exist), uvicorn in a subprocess.

Embedded SQLite by default; ``database="postgres"`` creates (and drops) a scratch PostgreSQL database.
No worker runs: jobs stay queued, which is all the API-side benches need.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("KEEL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
HOST = "127.0.0.1"  # loopback only, always


@dataclass
class Service:
    url: str
    admin: str
    tenant: str
    file_id: str
    job_id: str
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _pg_db(action: str, name: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        sql = f'CREATE DATABASE "{name}"' if action == "create" else f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        c.execute(sa.text(sql))
    engine.dispose()


def _seed(root: Path) -> tuple[str, str]:
    """Migrate, create the keys, register the micro model (built under ``root``). Runs in this process."""
    from core.bootstrap import migrate
    from core.db import reset_caches, session_scope
    from core.tenants.service import create_tenant

    reset_caches()
    migrate()
    with session_scope() as s:
        _, admin = create_tenant(s, "ops", role="admin")
        _, tenant = create_tenant(s, "alice")
    return admin, tenant


def _register_micro(url: str, admin: str, root: Path) -> None:
    sys.path.insert(0, str(REPO))
    from tests.factories import build_micro_model

    micro = build_micro_model(root / "micro")
    body = {
        "id": "micro",
        "path": micro["base"],
        "alignment_adapter": micro["alignment"],
        "safety_data": {k: f"{micro['data']}/{k}.jsonl" for k in ("safety_corpus", "harmful_eval", "benign_eval")},
    }
    r = httpx.post(f"{url}/v1/admin/base_models", json=body, headers=auth(admin), timeout=60)
    r.raise_for_status()


def _training_rows(n: int = 24) -> bytes:
    import json

    rows = [
        {"messages": [{"role": "user", "content": f"say {i}"}, {"role": "assistant", "content": f"ok {i} done"}]}
        for i in range(n)
    ]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@contextlib.contextmanager
def service(database: str = "sqlite", extra_env: dict[str, str] | None = None, workers: int = 1) -> Iterator[Service]:
    root = Path(tempfile.mkdtemp(prefix="keel-bench-"))
    dbname = None
    env = {
        "KEEL_DATA_DIR": str(root / "data"),
        "KEEL_STORE_DIR": str(root / "store"),
        "KEEL_DATABASE_URL": "",
        "KEEL_BROKER_URL": "",
        "KEEL_RATE_LIMIT_RPS": "0",
        **(extra_env or {}),
    }
    if database == "postgres":
        dbname = f"keel_bench_{uuid.uuid4().hex[:10]}"
        _pg_db("create", dbname)
        env["KEEL_DATABASE_URL"] = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{dbname}"
    (root / "data").mkdir(parents=True)
    os.environ.update(env)
    from core.config import get_settings

    get_settings.cache_clear()
    admin, tenant = _seed(root)
    port = free_port()
    url = f"http://{HOST}:{port}"
    cmd = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", HOST, "--port", str(port)]
    cmd += ["--no-access-log", "--log-level", "warning", "--workers", str(workers)]
    proc_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(cmd, cwd=REPO, env=proc_env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the API did not start")
            time.sleep(0.2)
        _register_micro(url, admin, root)
        up = httpx.post(
            f"{url}/v1/files",
            headers=auth(tenant),
            files={"file": ("train.jsonl", io.BytesIO(_training_rows()))},
            data={"purpose": "fine-tune", "model": "micro"},
            timeout=60,
        )
        up.raise_for_status()
        file_id = up.json()["id"]
        body = {"model": "micro", "training_file": file_id, "metadata": {"bench": "yes"}}
        jr = httpx.post(f"{url}/v1/fine_tuning/jobs", headers=auth(tenant), json=body, timeout=60)
        jr.raise_for_status()
        yield Service(url, admin, tenant, file_id, jr.json()["id"], env, proc)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if dbname:
            from core.db import reset_caches

            reset_caches()
            _pg_db("drop", dbname)
        import shutil

        shutil.rmtree(root, ignore_errors=True)
