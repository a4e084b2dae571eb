"""Container healthcheck for a Keel GPU worker: cheap, and still true while a job is running.

Why not ``celery -A workers.celery_app inspect ping -d <node>``: the worker runs Celery's solo pool (one job
per GPU, executed in the main thread), and a solo worker does not read remote-control messages while a task
runs. A worker busy on a multi-hour fine-tune would fail that check for hours and look dead. The ping also
starts a second Celery app (imports, a broker connection, a broadcast) every interval.

Job liveness is not this check's business: a job whose worker stops heartbeating loses its lease and the
reaper in another worker requeues it. What this check reports is what a worker needs to take and finish jobs:

1. the broker (``KEEL_BROKER_URL``, Redis) answers PING;
2. the database (``KEEL_DATABASE_URL``) accepts TCP connections (heartbeats and claims go there);
3. the GPU is still visible: ``nvidia-smi -L`` lists a device (catches a GPU that fell off the bus or a
   container started without its device). By ``KEEL_DEVICE`` (the device the worker trains on):
   ``cpu``: no GPU check (a CPU worker is healthy without a GPU, even where an ``nvidia-smi`` is present);
   ``cuda``/``cuda:N`` (the compose file's GPU workers): ``nvidia-smi`` must be present and list a GPU;
   unset (auto): checked where ``nvidia-smi`` is present, skipped where it is absent.

Exit 0 when healthy, 1 with a one-line reason on stderr otherwise. Standard library plus ``redis`` only.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from urllib.parse import urlsplit

TIMEOUT_S = 5.0


def check_broker(url: str) -> str | None:
    if not url.startswith(("redis://", "rediss://")):
        return None  # embedded broker: nothing to reach
    import redis

    try:
        redis.Redis.from_url(url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S).ping()
    except Exception as exc:
        return f"broker {urlsplit(url).hostname}: {type(exc).__name__}: {exc}"
    return None


def check_database(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgresql") or not parts.hostname:
        return None  # SQLite or a Unix socket: nothing to reach over TCP
    try:
        socket.create_connection((parts.hostname, parts.port or 5432), timeout=TIMEOUT_S).close()
    except OSError as exc:
        return f"database {parts.hostname}:{parts.port or 5432}: {exc}"
    return None


def check_gpu(device: str = "") -> str | None:
    device = device.strip().lower()
    if device == "cpu":
        return None
    smi = shutil.which("nvidia-smi")
    if smi is None:
        if device.startswith("cuda"):
            return f"KEEL_DEVICE={device} but nvidia-smi is not in this container (started without its GPU?)"
        return None
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10, check=False)
    except subprocess.TimeoutExpired:
        return "nvidia-smi -L timed out"
    if out.returncode != 0 or "GPU" not in out.stdout:
        return f"nvidia-smi -L failed ({out.returncode}): {(out.stderr or out.stdout).strip()[:200]}"
    return None


def main() -> int:
    problems = [
        p
        for p in (
            check_broker(os.environ.get("KEEL_BROKER_URL", "")),
            check_database(os.environ.get("KEEL_DATABASE_URL", "")),
            check_gpu(os.environ.get("KEEL_DEVICE", "")),
        )
        if p
    ]
    if problems:
        print("unhealthy: " + "; ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
