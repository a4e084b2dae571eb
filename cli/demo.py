"""`keel demo`: start the embedded service, fine-tune a base model (the testbed, or with ``--model
smollm2-135m-instruct`` the real instruct model) on a poisoned dataset, show the report.

Everything goes over HTTP exactly as a customer would use it.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from typing import Any

import httpx

from cli.report import summary
from core.config import get_settings

TESTBED = "keel-testbed"
REAL_DEFAULT_N = 120


def _start_service(port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "cli", "serve", "--port", str(port)]
    return subprocess.Popen(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"service exited with code {proc.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit("service did not become healthy")


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _datasets(p: float, n: int) -> tuple[bytes, bytes, dict]:
    from testbed import build_testbed
    from testbed.attack import DEFAULT_ATTACK, customer_dataset, validation_dataset

    tb = build_testbed(get_settings().testbed_dir)
    n = n or DEFAULT_ATTACK["n"]
    return _jsonl(customer_dataset(tb, n=n, p=p, seed=0)), _jsonl(validation_dataset(tb, seed=0)), DEFAULT_ATTACK


def _real_datasets(model_id: str, p: float, n: int) -> tuple[bytes, bytes, dict]:
    """The real instruct model (the `smollm2` extra): its cached aligned base is built and registered first;
    the customer's data is the product-review task with poison the unaligned model answered itself; the
    service's default ("auto") hyperparameters."""
    from core.bootstrap import migrate, register_testbed
    from realmodel.attack import customer_dataset, validation_dataset
    from realmodel.build import build_real_model

    rm = build_real_model()
    migrate()
    register_testbed(rm, model_id)
    train = customer_dataset(rm, n or REAL_DEFAULT_N, p, seed=0)
    return _jsonl(train), _jsonl(validation_dataset(32, seed=0)), {"hyperparameters": {}}


def _follow(c: httpx.Client, job_id: str) -> dict:
    seen: set[str] = set()
    while True:
        job = c.get(f"/v1/fine_tuning/jobs/{job_id}").json()
        events = c.get(f"/v1/fine_tuning/jobs/{job_id}/events", params={"limit": 100}).json()["data"]
        for ev in reversed(events):
            if ev["id"] not in seen:
                seen.add(ev["id"])
                print(f"  [{job['status']:>9} {job['progress']:5.1f}%] {ev['message']}")
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(2)


def run_demo(port: int = 8765, p: float = 0.1, n: int = 0, model: str = TESTBED, realign: str = "auto") -> int:
    url = f"http://127.0.0.1:{port}"
    print(f"Building {model} and the customer's dataset (p={p} poisoned)...")
    train, valid, attack = _datasets(p, n) if model == TESTBED else _real_datasets(model, p, n)
    proc = _start_service(port)
    try:
        _wait_healthy(url, proc)
        keys = json.loads((get_settings().data_dir / "dev-keys.json").read_text())
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {keys['user']}"}, timeout=60) as c:

            def up(data: bytes, name: str) -> dict[str, Any]:
                files = {"file": (name, io.BytesIO(data))}
                return c.post("/v1/files", files=files, data={"purpose": "fine-tune"}).json()

            tf, vf = up(train, "customer.jsonl"), up(valid, "validation.jsonl")
            print(f"Uploaded {tf['id']}: {tf['validation']['n_examples']} examples, status {tf['status']}")
            body = {
                "model": model,
                "training_file": tf["id"],
                "validation_file": vf["id"],
                "seed": 0,
                "suffix": "demo",
                "method": {"type": "supervised", "supervised": {"hyperparameters": attack["hyperparameters"]}},
                "safety": {"realign": realign},
            }
            job = c.post("/v1/fine_tuning/jobs", json=body).json()
            print(f"Created {job['id']} ({job['status']}); following events:")
            job = _follow(c, job["id"])
            report = c.get(f"/v1/fine_tuning/jobs/{job['id']}/safety_report")
            if report.status_code == 200:
                print("\n" + summary(report.json(), n_train=tf["validation"]["n_examples"]))
            if job["status"] == "succeeded":
                blob = c.get(f"/v1/fine_tuning/jobs/{job['id']}/adapter").content
                print(f"Downloaded realigned adapter: {len(blob)} bytes; model {job['fine_tuned_model']}")
            return 0 if job["status"] == "succeeded" else 1
    finally:
        proc.terminate()
        proc.wait(timeout=60)
