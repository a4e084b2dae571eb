"""Fault suite on PostgreSQL + a throwaway Redis + real Celery workers (issue #8).

Each fault must lose no job and leave exactly one artifact of each kind (whose stored bytes match the row),
one safety report, a status that agrees with the events, and no stray objects in the store once the janitor
has run (each attempt writes its own keys; a killed attempt's unrecorded bytes are orphans):

- the broker (its own ``redis-server``, never the shared one) restarts empty mid-job;
- the worker is SIGKILLed mid-realignment;
- the worker is SIGKILLed between a store write and the commit of its row, at every artifact;
- the API is restarted (SIGTERM) with event streams open; the clients resume where they were.

Faults are injected in the worker process by ``tests/workers/faultinject/sitecustomize.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import httpx
import pytest
from sqlalchemy import func, select

from tests.factories import chat_rows, to_jsonl
from tests.fixtures.service import auth, upload
from tests.workers.helpers import (
    REPO,
    TERMINAL,
    all_events,
    cancel_leftover_jobs,
    job,
    start_worker,
    stop_worker,
    wait_for,
    wait_terminal,
)

pytestmark = pytest.mark.postgres

FAULTS = Path(__file__).resolve().parent / "faultinject"
KINDS = ["adapter", "adapter_raw", "report_plot"]
SMALL = {"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 10}
# The module's own settings, in this process and in its workers: faster re-send of jobs whose message the
# broker lost, and enough attempts for one job to survive three crashes.
MODULE_ENV = {"KEEL_REQUEUE_AFTER_S": "3", "KEEL_MAX_ATTEMPTS": "6"}


@dataclass
class Broker:
    port: int
    dir: Path
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        exe = shutil.which("redis-server")
        assert exe, "redis-server is not installed"
        cmd = [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        cmd += ["--dir", str(self.dir), "--protected-mode", "yes"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        r = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        wait_for(lambda: _pings(r), 20, interval=0.1, what="the test redis-server")

    def stop(self) -> None:
        """SIGKILL: nothing is saved (--save ''), so every queued message is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _pings(r) -> bool:
    import redis

    try:
        return bool(r.ping())
    except redis.RedisError:
        return False


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _configure(values: dict[str, str | None]) -> None:
    from core.db import reset_caches
    from core.queue import celery_app

    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    reset_caches()
    celery_app.cache_clear()


@pytest.fixture(scope="module")
def broker(stack, keys, tmp_path_factory) -> Iterator[Broker]:
    if stack["backend"] != "postgres":
        pytest.skip("the fault suite runs on PostgreSQL + Redis")
    b = Broker(_free_port(), tmp_path_factory.mktemp("redis"))
    b.start()
    new = {"KEEL_BROKER_URL": b.url, **MODULE_ENV}
    old = {k: os.environ.get(k) for k in new}
    _configure(new)
    cancel_leftover_jobs(("queued", "running", "paused"))  # else the reaper would re-send them here
    try:
        yield b
    finally:
        _configure(old)
        b.stop()


@pytest.fixture(scope="module")
def tenant(broker) -> str:
    from core.db import session_scope
    from core.tenants.service import create_tenant

    with session_scope() as s:
        return create_tenant(s, "faults")[1]


def _worker(stack: dict, broker: Broker, log: Path, fault: str = "", fault_dir: Path | None = None):
    env = {**stack, "KEEL_BROKER_URL": broker.url, **MODULE_ENV, "KEEL_FAULT": fault}
    env["KEEL_FAULT_DIR"] = str(fault_dir or log.parent)
    pythonpath = os.pathsep.join(p for p in (str(FAULTS), str(REPO), os.environ.get("PYTHONPATH")) if p)
    with mock.patch.dict(os.environ, {"PYTHONPATH": pythonpath}):
        return start_worker(env, log)


def _create(client, key: str, n: int = 24, hp: dict | None = None, seed: int = 1) -> str:
    fid = upload(client, key, to_jsonl(chat_rows(n, seed=seed))).json()["id"]
    body = {
        "model": "micro",
        "training_file": fid,
        "seed": seed,
        "method": {"type": "supervised", "supervised": {"hyperparameters": hp or SMALL}},
    }
    r = client.post("/v1/fine_tuning/jobs", headers=auth(key), json=body)
    assert r.status_code == 200, r.text
    return r.json()["id"]


def _until_done(client, key: str, jid: str, start, max_workers: int, tmp_path: Path) -> tuple[dict, list[int]]:
    """Start workers one after another (each may die of its injected fault) until the job is terminal.
    Returns the final job and the exit codes of the workers that died."""
    deaths: list[int] = []
    for i in range(max_workers):
        proc = start(tmp_path / f"w{i}.log")
        try:
            done = wait_for(
                lambda p=proc: job(client, key, jid)["status"] in TERMINAL or p.poll() is not None,
                300,
                interval=0.5,
                what=f"job {jid} to finish or worker {i} to die",
            )
            if proc.poll() is not None:
                deaths.append(proc.returncode)
                continue
            assert done
            return job(client, key, jid), deaths
        finally:
            stop_worker(proc)
    raise AssertionError(f"job {jid} not finished after {max_workers} workers: {job(client, key, jid)}")


def _assert_one_result(client, key: str, jid: str) -> list[dict]:
    """Succeeded, exactly one artifact per kind with matching bytes, one report, events agreeing."""
    from core.config import get_settings
    from core.db import session_scope
    from core.janitor import sweep
    from core.tables import Artifact, SafetyReport

    done = job(client, key, jid)
    assert done["status"] == "succeeded" and done["error"] is None, done
    assert done["progress"] == 100.0 and done["finished_at"] and done["fine_tuned_model"]
    with session_scope() as s:
        arts = s.scalars(select(Artifact).where(Artifact.job_id == jid)).all()
        reports = s.scalar(select(func.count()).select_from(SafetyReport).where(SafetyReport.job_id == jid))
    assert sorted(a.kind for a in arts) == KINDS and reports == 1
    store = Path(get_settings().store_dir).resolve()
    for a in arts:
        blob = (store / a.storage_key).read_bytes()
        assert hashlib.sha256(blob).hexdigest() == a.sha256 and len(blob) == a.bytes, a.kind
    with session_scope() as s:  # bytes of attempts that died before their row committed are the janitor's
        sweep(s, grace_s=0)
    job_dir = store / "jobs" / jid
    left = sorted(p.relative_to(store).as_posix() for p in job_dir.rglob("*") if p.is_file())
    assert left == sorted(a.storage_key for a in arts), "stray objects in the store"
    assert len(done["result_files"]) == 1
    r = client.get(f"/v1/fine_tuning/jobs/{jid}/adapter", headers=auth(key))
    adapter = next(a for a in arts if a.kind == "adapter")
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == adapter.sha256

    events = all_events(client, key, jid)
    assert len({e["id"] for e in events}) == len(events)
    assert [e["created_at"] for e in events] == sorted(e["created_at"] for e in events)
    finals = [e for e in events if e["message"].startswith(("The job has successfully completed", "Job failed"))]
    assert [e["message"] for e in finals] == [f"The job has successfully completed; model {done['fine_tuned_model']}"]
    assert events[-1] == finals[0], "nothing happens to a job after it succeeded"
    starts = [e for e in events if "started the job (attempt" in e["message"]]
    assert len(starts) == done["attempt"], (len(starts), done["attempt"])
    return events


def test_broker_restart_mid_job_loses_no_job(client, tenant, stack, broker, tmp_path):
    """Redis dies (no persistence: every message gone) while job A trains and job B waits in the queue."""
    a = _create(client, tenant, n=48, hp={"n_epochs": 6, "batch_size": 2, "learning_rate_multiplier": 5}, seed=2)
    b = _create(client, tenant, seed=3)
    proc = _worker(stack, broker, tmp_path / "w.log")
    try:
        wait_for(
            lambda: any(e["type"] == "metrics" for e in all_events(client, tenant, a)),
            240,
            what="job A to train",
        )
        broker.stop()
        time.sleep(2)
        broker.start()
        done_a = wait_terminal(client, tenant, a, timeout=300)
        done_b = wait_terminal(client, tenant, b, timeout=300)
        assert proc.poll() is None, "the worker survives the broker restart"
    finally:
        stop_worker(proc)
    assert done_a["status"] == done_b["status"] == "succeeded", (done_a, done_b)
    _assert_one_result(client, tenant, a)
    _assert_one_result(client, tenant, b)


def test_sigkill_mid_realignment(client, tenant, stack, broker, tmp_path):
    jid = _create(client, tenant, seed=4)
    done, deaths = _until_done(
        client, tenant, jid, lambda log: _worker(stack, broker, log, "realign", tmp_path), 3, tmp_path
    )
    assert deaths == [-signal.SIGKILL] and (tmp_path / "realign").exists()
    assert done["attempt"] == 2, done
    events = _assert_one_result(client, tenant, jid)
    messages = [e["message"] for e in events]
    assert sum(m.startswith("Realigning with method") for m in messages) == 2  # started twice, finished once
    assert any("stopped heartbeating" in m for m in messages)


def _names(points: list[str]) -> list[str]:
    return [p.removeprefix("put:") for p in points]


def test_sigkill_between_store_write_and_commit_of_each_artifact(client, tenant, stack, broker, tmp_path):
    points = ["put:adapter_raw.zip", "put:safety_report.png", "put:adapter.zip"]
    jid = _create(client, tenant, seed=5)
    done, deaths = _until_done(
        client, tenant, jid, lambda log: _worker(stack, broker, log, ",".join(points), tmp_path), 5, tmp_path
    )
    assert deaths == [-signal.SIGKILL] * 3
    assert all((tmp_path / p.replace(":", "_")).exists() for p in points)
    assert done["attempt"] == 4, done
    from core.db import session_scope
    from core.janitor import orphans

    with session_scope() as s:  # each killed attempt left its own bytes, none of them recorded
        left = [k for k in orphans(s, grace_s=0) if k.startswith(f"jobs/{jid}/")]
    assert left == [f"jobs/{jid}/attempt-{n}/{name}" for n, name in enumerate(_names(points), start=1)]
    events = _assert_one_result(client, tenant, jid)
    assert sum("stopped heartbeating" in e["message"] for e in events) == 3


class _Stream(threading.Thread):
    """One SSE client: the event ids and types it received, whether it saw `done`, and how it ended."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url, self.headers = url, headers
        self.ids: list[str] = []
        self.types: list[str] = []
        self.done = False
        self.error: str | None = None

    def run(self) -> None:
        try:
            with httpx.stream("GET", self.url, headers=self.headers, timeout=httpx.Timeout(10, read=60)) as r:
                if r.status_code != 200:
                    self.error = f"HTTP {r.status_code}"
                    return
                for line in r.iter_lines():
                    if line.startswith("id: "):
                        self.ids.append(line[4:])
                    elif line.startswith("data: ") and not self.done:
                        self.types.append(json.loads(line[6:]).get("type", ""))
                    elif line == "event: done":
                        self.done = True
        except Exception as exc:
            self.error = repr(exc)


def _api(stack: dict, broker: Broker, port: int, log: Path) -> subprocess.Popen:
    """The API exactly as `keel serve` starts it, in its own process, on this module's broker."""
    from cli.main import api_cmd

    env = {**os.environ, **{k: v for k, v in stack.items() if k.startswith("KEEL_")}, **MODULE_ENV}
    env["KEEL_BROKER_URL"] = broker.url
    with open(log, "ab") as out:
        proc = subprocess.Popen(api_cmd("127.0.0.1", port), cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    wait_for(lambda: _healthy(port) or proc.poll() is not None, 60, interval=0.2, what="the API to start")
    assert proc.poll() is None, log.read_text()
    return proc


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_api_restart_with_open_streams(client, tenant, stack, broker, tmp_path):
    """SIGTERM to the API while 4 clients stream a training job's events: the streams end cleanly and the
    server exits at once; after a restart the clients resume (after=, Last-Event-ID) and together with what
    they had, each saw every event of the job exactly once, in order."""
    jid = _create(client, tenant, n=48, hp={"n_epochs": 6, "batch_size": 2, "learning_rate_multiplier": 5}, seed=6)
    port, headers = _free_port(), auth(tenant)
    url = f"http://127.0.0.1:{port}/v1/fine_tuning/jobs/{jid}/events?stream=true"
    worker, api = _worker(stack, broker, tmp_path / "w.log"), _api(stack, broker, port, tmp_path / "api-1.log")
    try:
        first = [_Stream(url, headers) for _ in range(4)]
        for s in first:
            s.start()
        wait_for(lambda: all("metrics" in s.types for s in first), 240, what="every stream to see training")
        api.send_signal(signal.SIGTERM)
        assert api.wait(timeout=10) in (0, -signal.SIGTERM)  # not waiting out the streams
        for s in first:
            s.join(timeout=10)
        assert [(s.is_alive(), s.error, s.done) for s in first] == [(False, None, False)] * 4  # a clean end
        assert job(client, tenant, jid)["status"] == "running"
        api = _api(stack, broker, port, tmp_path / "api-2.log")
        resumed = [_Stream(f"{url}&after={s.ids[-1]}", headers) for s in first[:2]]
        resumed += [_Stream(url, {**headers, "Last-Event-ID": s.ids[-1]}) for s in first[2:]]
        for s in resumed:
            s.start()
        for s in resumed:
            s.join(timeout=300)
    finally:
        api.send_signal(signal.SIGTERM)
        api.wait(timeout=30)
        stop_worker(worker)
    assert [(s.error, s.done) for s in resumed] == [(None, True)] * 4
    ids = [e["id"] for e in _assert_one_result(client, tenant, jid)]
    for before, after in zip(first, resumed, strict=True):
        assert before.ids + after.ids == ids
