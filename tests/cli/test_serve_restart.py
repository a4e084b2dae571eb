"""A dead worker does not take `keel serve` down: SIGKILL the worker mid-job; the API keeps answering, the
supervisor says why and starts a new worker, which picks the job up (half the tokens per micro-batch) and
finishes it. Then Ctrl-C still stops both."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.cli.test_serve import _alive, _env, _free_port
from tests.factories import chat_rows, to_jsonl

REPO = Path(__file__).resolve().parents[2]
FAST = {
    "KEEL_JOB_LEASE_S": "6",
    "KEEL_HEARTBEAT_S": "1",
    "KEEL_REAPER_INTERVAL_S": "1",
    "KEEL_SAFETY_EVAL_SIZE": "24",
    "KEEL_AUDIT_EVAL_SIZE": "24",
    "KEEL_METRICS_EVERY_S": "0",
    "KEEL_RATE_LIMIT_RPS": "1000",
}


class Serve:
    """`keel serve` in the background, its output collected line by line."""

    def __init__(self, tmp_path: Path, port: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--no-testbed", "--port", str(port)],
            cwd=REPO,
            env={**_env(tmp_path), **FAST},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.url = f"http://127.0.0.1:{port}"

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if m := re.search(pattern, line):
                    return m
            time.sleep(0.1)
        raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(self.lines))


def _until(fn, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := fn():
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _events(c: httpx.Client, jid: str) -> list[dict]:
    out, after = [], ""
    while True:
        page = c.get(f"/v1/fine_tuning/jobs/{jid}/events?limit=100{after}").json()
        out += page["data"]
        if not page["has_more"]:
            return out[::-1]
        after = f"&after={page['data'][-1]['id']}"


def test_a_killed_worker_is_restarted_and_finishes_the_job_while_the_api_answers(tmp_path, micro):
    serve = Serve(tmp_path, _free_port())
    try:
        admin = serve.wait_line(r"Admin key:\s+(\S+)", 120).group(1)
        tenant = serve.wait_line(r"Tenant key:\s+(\S+)", 5).group(1)
        worker = int(serve.wait_line(r"Worker:\s+pid (\d+)", 5).group(1))
        api = int(serve.wait_line(r"Api:\s+pid (\d+)", 5).group(1))
        _until(lambda: _healthy(serve.url), 60, "the API")
        _register_micro(serve.url, admin, micro)
        c = httpx.Client(base_url=serve.url, headers={"Authorization": f"Bearer {tenant}"}, timeout=30)
        files = {"file": ("t.jsonl", to_jsonl(chat_rows(48, seed=5)))}
        fid = c.post("/v1/files", files=files, data={"purpose": "fine-tune", "model": "micro"}).json()["id"]
        hp = {"n_epochs": 4, "batch_size": 2, "learning_rate_multiplier": 5}
        body = {
            "model": "micro",
            "training_file": fid,
            "method": {"type": "supervised", "supervised": {"hyperparameters": hp}},
        }
        jid = c.post("/v1/fine_tuning/jobs", json=body).json()["id"]
        _until(lambda: c.get(f"/v1/fine_tuning/jobs/{jid}/checkpoints").json()["data"], 240, "a first checkpoint")

        os.kill(worker, signal.SIGKILL)
        serve.wait_line(rf"worker \(pid {worker}\) was killed by SIGKILL.*restarting it in", 10)
        assert _healthy(serve.url) and serve.proc.poll() is None, "the API went down with the worker"
        new = int(serve.wait_line(r"worker restarted, pid (\d+)", 30).group(1))
        assert new != worker and _alive(new) and _alive(api)

        done = _until(
            lambda: (j := c.get(f"/v1/fine_tuning/jobs/{jid}").json())["status"] in {"succeeded", "failed"} and j,
            400,
            "the job to finish",
        )
        assert done["status"] == "succeeded" and done["attempt"] == 2, done
        retry = [e for e in _events(c, jid) if "micro_batch_tokens" in (e["data"] or {})]
        assert [e["data"]["micro_batch_tokens"] for e in retry] == [2048]
        assert retry[0]["data"]["likely_out_of_memory"] is True  # the supervisor saw SIGKILL
        messages = [e["message"] for e in _events(c, jid)]
        assert any("resumed from step" in m for m in messages), [m for m in messages if not m.startswith("Step ")]

        serve.proc.send_signal(signal.SIGINT)  # only Ctrl-C / SIGTERM stops both
        assert serve.proc.wait(timeout=90) == 0
        _until(lambda: not _alive(new) and not _alive(api), 10, "both children to stop")
    finally:
        if serve.proc.poll() is None:
            serve.proc.kill()
            serve.proc.wait()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _register_micro(url: str, admin: str, micro: dict[str, str]) -> None:
    data = {k: os.path.join(micro["data"], f"{k}.jsonl") for k in ("safety_corpus", "harmful_eval", "benign_eval")}
    body = {"id": "micro", "path": micro["base"], "alignment_adapter": micro["alignment"], "safety_data": data}
    r = httpx.post(f"{url}/v1/admin/base_models", json=body, headers={"Authorization": f"Bearer {admin}"}, timeout=60)
    assert r.status_code == 200, r.text
