"""Helpers for worker tests: real Celery worker subprocesses and polling."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.factories import chat_rows, to_jsonl
from tests.fixtures.service import auth, upload

TERMINAL = {"succeeded", "failed", "cancelled"}
REPO = Path(__file__).resolve().parents[2]


def queued_job(client, key: str, n: int = 24, epochs: int = 2, bs: int = 4) -> str:
    """A job on the micro model, created through the API (queued; a worker started later runs it)."""
    fid = upload(client, key, to_jsonl(chat_rows(n))).json()["id"]
    hp = {"n_epochs": epochs, "batch_size": bs, "learning_rate_multiplier": 10}
    body = {
        "model": "micro",
        "training_file": fid,
        "method": {"type": "supervised", "supervised": {"hyperparameters": hp}},
    }
    r = client.post("/v1/fine_tuning/jobs", headers=auth(key), json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def cancel_leftover_jobs(statuses: tuple[str, ...] = ("queued",)) -> None:
    """Earlier modules leave queued jobs (and their broker messages) behind: a worker started now would train them
    all before the test's own job. Cancelled, their messages are skipped at once."""
    from sqlalchemy import update

    from core.db import session_scope
    from core.tables import Job

    with session_scope() as s:
        s.execute(update(Job).where(Job.status.in_(statuses)).values(status="cancelled"))


def start_worker(stack: dict, log: Path) -> subprocess.Popen:
    """A real Celery worker, started exactly as `keel worker` starts one (own process group)."""
    from cli.main import worker_cmd

    env = {**os.environ, **{k: v for k, v in stack.items() if k.startswith("KEEL_")}, "C_FORCE_ROOT": "1"}
    with open(log, "ab") as out:
        return subprocess.Popen(
            worker_cmd(name=f"test-{time.monotonic_ns()}"),
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_worker(proc: subprocess.Popen, kill: bool = False) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_for(predicate, timeout: float, interval: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def job(client, key: str, job_id: str) -> dict:
    return client.get(f"/v1/fine_tuning/jobs/{job_id}", headers=auth(key)).json()


def wait_terminal(client, key: str, job_id: str, timeout: float = 240) -> dict:
    return wait_for(
        lambda: (j := job(client, key, job_id))["status"] in TERMINAL and j, timeout, what=f"job {job_id} to finish"
    )


def all_events(client, key: str, job_id: str) -> list[dict]:
    out, after = [], None
    while True:
        q = f"?limit=100&after={after}" if after else "?limit=100"
        page = client.get(f"/v1/fine_tuning/jobs/{job_id}/events{q}", headers=auth(key)).json()
        out += page["data"]
        if not page["has_more"]:
            return list(reversed(out))
        after = page["data"][-1]["id"]


def first_checkpoint(client, key: str, job_id: str, timeout: float = 300) -> None:
    wait_for(
        lambda: client.get(f"/v1/fine_tuning/jobs/{job_id}/checkpoints", headers=auth(key)).json()["data"],
        timeout,
        what="a first checkpoint",
    )


def finish_on_a_new_worker(client, key: str, stack: dict, job_id: str, log: Path) -> tuple[dict, list[str]]:
    """Start a fresh worker, wait for the job to end, stop the worker: (final job, event messages)."""
    worker = start_worker(stack, log)
    try:
        done = wait_terminal(client, key, job_id, timeout=400)
    finally:
        stop_worker(worker)
    return done, [e["message"] for e in all_events(client, key, job_id)]
