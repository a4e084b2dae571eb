"""`keel serve` as a user runs it: stops cleanly on SIGTERM and SIGINT with no orphaned API or worker, and
refuses a busy port before touching anything."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    return {
        **keep,
        "KEEL_DATA_DIR": str(tmp_path / "data"),
        "KEEL_STORE_DIR": str(tmp_path / "store"),
        "PYTHONUNBUFFERED": "1",
    }


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def _start(tmp_path: Path, port: int) -> tuple[subprocess.Popen[str], dict[str, int]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "--no-testbed", "--port", str(port)],
        cwd=REPO,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    pids: dict[str, int] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        if m := re.match(r"(Api|Worker):\s+pid (\d+)", line):
            pids[m.group(1).lower()] = int(m.group(2))
        if line.startswith("Stop with"):
            break
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc, pids
        except httpx.HTTPError:
            time.sleep(0.5)
    raise AssertionError("keel serve did not become healthy")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_api_and_worker_on_signal(tmp_path, sig):
    proc, pids = _start(tmp_path, _free_port())
    assert set(pids) == {"api", "worker"} and all(_alive(p) for p in pids.values())
    proc.send_signal(sig)
    assert proc.wait(timeout=90) == 0
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in pids.values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [name for name, p in pids.items() if _alive(p)]


def test_serve_refuses_a_busy_port_before_touching_the_database(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "cli", "serve", "--no-testbed", "--port", str(port)],
            cwd=REPO,
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode != 0 and "already in use" in out.stderr
    assert "Admin key" not in out.stdout and not (tmp_path / "data" / "keel.db").exists()
