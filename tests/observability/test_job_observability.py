"""One real job through a real Celery worker, watched the way an operator and a customer would:

* webhooks to real local receivers: signatures verified by the `standardwebhooks` package, a receiver's 500
  retried, a dead receiver failing after its attempts without holding the job up;
* GET /metrics scraped before and after the job: the counters the job moves moved (API and worker share the
  multiprocess directory), and the worker's own /metrics endpoint serves them too;
* the worker's log lines are JSON carrying the job id, the tenant id and the stage;
* a real Prometheus server (Debian's `prometheus`) scrapes the API and the worker, and its HTTP API answers
  queries for Keel's series.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.factories import chat_rows, to_jsonl
from tests.fixtures.service import auth, upload
from tests.observability.receiver import dead_url, receiver
from tests.observability.scrape import moved, parse, value
from tests.workers.helpers import cancel_leftover_jobs, start_worker, stop_worker, wait_for, wait_terminal

HP = {"n_epochs": 3, "batch_size": 4, "learning_rate_multiplier": 50}
ENV = {
    "KEEL_WEBHOOKS_ALLOW_PRIVATE": "1",
    "KEEL_WEBHOOK_BACKOFF_S": "0.5",
    "KEEL_WEBHOOK_MAX_ATTEMPTS": "3",
    "KEEL_WEBHOOK_TIMEOUT_S": "3",
    "KEEL_LOG_FORMAT": "json",
}


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return int(port)


@pytest.fixture(scope="module")
def observed(stack, keys, client, tmp_path_factory):
    """A worker with a metrics port, webhooks allowed to loopback; runs one job with three endpoints."""
    from core.config import get_settings

    port = _free_port()
    env = {**ENV, "KEEL_WORKER_METRICS_PORT": str(port)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    cancel_leftover_jobs()
    log = tmp_path_factory.mktemp("obs") / "worker.log"
    worker = start_worker({**stack, **env}, log)
    try:
        with receiver() as good, receiver(statuses=[500]) as flaky:
            yield _run_job(client, keys, good, flaky) | {"worker_port": port, "log": log, "good": good}
    finally:
        stop_worker(worker)
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        get_settings.cache_clear()


def _endpoint(client, key, url, events=None):
    r = client.post("/v1/webhook_endpoints", headers=auth(key), json={"url": url, "events": events})
    assert r.status_code == 200, r.text
    return r.json()


def _run_job(client, keys, good, flaky) -> dict:
    key = keys["alice"]
    eps = {
        "good": _endpoint(client, key, good.url),
        "flaky": _endpoint(client, key, flaky.url, ["fine_tuning.job.succeeded"]),
        "dead": _endpoint(client, key, dead_url(), ["fine_tuning.job.succeeded"]),
    }
    before = parse(client.get("/metrics").text)
    data = to_jsonl(chat_rows(24))
    fid = upload(client, key, data).json()["id"]
    body = {"model": "micro", "training_file": fid, "seed": 7, "hyperparameters": HP}
    created = client.post("/v1/fine_tuning/jobs", headers=auth(key), json=body)
    assert created.status_code == 200, created.text
    done = wait_terminal(client, key, created.json()["id"], timeout=400)
    logs = {
        name: wait_for(lambda ep=ep: _settled(client, key, ep["id"]), 60, what=f"{name} deliveries to settle")
        for name, ep in eps.items()
    }
    after = parse(client.get("/metrics").text)
    for ep in eps.values():
        client.delete(f"/v1/webhook_endpoints/{ep['id']}", headers=auth(key))
    return {"job": done, "endpoints": eps, "deliveries": logs, "before": before, "after": after, "upload": len(data)}


def _settled(client, key, endpoint_id) -> list[dict] | None:
    rows = client.get(f"/v1/webhook_endpoints/{endpoint_id}/deliveries", headers=auth(key)).json()["data"]
    return rows if rows and all(r["status"] != "pending" for r in rows) else None


def test_webhooks_signed_retried_and_a_dead_receiver_does_not_block(observed):
    job, eps, deliveries = observed["job"], observed["endpoints"], observed["deliveries"]
    assert job["status"] == "succeeded", job
    good = observed["good"]
    kinds = [json.loads(r.body)["type"] for r in good.requests]
    assert kinds == ["fine_tuning.job.realigned", "fine_tuning.job.succeeded"], kinds
    for req in good.requests:
        event = Webhook(eps["good"]["secret"]).verify(req.body, req.headers)  # the independent verifier
        assert event["data"]["id"] == job["id"] and event["object"] == "event"
    safety = json.loads(good.requests[0].body)["data"]["safety"]
    assert {"method", "passed", "before", "after"} <= set(safety) and "hs" in safety["after"]
    flaky = deliveries["flaky"]
    assert [(d["status"], d["attempts"]) for d in flaky] == [("delivered", 2)], flaky  # the 500 was retried
    dead = deliveries["dead"]
    assert [(d["status"], d["attempts"]) for d in dead] == [("failed", 3)], dead
    assert "ConnectError" in dead[0]["last_error"]
    # the job's terminal transition committed before any delivery was attempted
    assert job["finished_at"] <= min(d["created_at"] for ds in deliveries.values() for d in ds)


def test_metrics_moved_by_the_job(observed):
    b, a, model = observed["before"], observed["after"], observed["job"]["model"]
    assert moved(b, a, "keel_jobs_finished_total", status="succeeded", model=model) == 1
    for stage in ("training", "realigning", "evaluating", "exporting"):
        assert moved(b, a, "keel_job_stage_seconds_count", stage=stage) == 1, stage
    assert moved(b, a, "keel_training_tokens_per_second_count", model=model) == 1
    assert moved(b, a, "keel_realign_outcomes_total") == 1
    assert moved(b, a, "keel_harmfulness_score_count", phase="before") == 1
    assert moved(b, a, "keel_harmfulness_score_count", phase="after") == 1
    assert moved(b, a, "keel_upload_bytes_total") == observed["upload"]
    assert moved(b, a, "keel_webhook_deliveries_total", outcome="delivered") >= 3
    assert moved(b, a, "keel_webhook_deliveries_total", outcome="retry") >= 3
    assert moved(b, a, "keel_webhook_deliveries_total", outcome="failed") >= 1
    route = "/v1/fine_tuning/jobs/{job_id}"
    assert moved(b, a, "keel_http_request_duration_seconds_count", route=route, method="GET", status="200") >= 1
    assert value(a, "keel_jobs", status="succeeded", model=model) >= 1
    assert ("keel_queue_oldest_age_seconds", ()) in a


def test_the_worker_serves_its_metrics_and_logs_json_with_ids(observed):
    text = httpx.get(f"http://127.0.0.1:{observed['worker_port']}/metrics", timeout=10).text
    samples = parse(text)
    assert value(samples, "keel_jobs_finished_total", status="succeeded") >= 1
    assert ("keel_queue_depth", ()) not in samples  # database gauges come from the API only
    job = observed["job"]
    lines = [json.loads(x) for x in observed["log"].read_text().splitlines() if x.startswith("{")]
    mine = [x for x in lines if x.get("job_id") == job["id"]]
    assert mine, "no worker log line carries the job id"
    assert {x["tenant_id"] for x in mine} == {job["organization_id"]}
    assert "training" in {x["stage"] for x in mine}  # set_stage tags the lines that follow it
    assert all(
        {"ts", "level", "logger", "message", "request_id", "tenant_id", "job_id", "stage"} <= set(x) for x in lines
    )


@pytest.mark.timeout(600)
def test_a_real_prometheus_scrapes_the_api_and_the_worker(observed, live_url, tmp_path):
    binary = shutil.which("prometheus")
    if binary is None:
        if os.environ.get("KEEL_TEST_REQUIRE_STACK") == "1" or os.environ.get("CI"):
            pytest.fail("the prometheus binary is required in CI (.ci/run installs Debian's prometheus)")
        pytest.skip("the prometheus binary is absent (apt-get install prometheus)")
    api = live_url.removeprefix("http://")
    worker = f"127.0.0.1:{observed['worker_port']}"
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: keel-api\n    static_configs: [{{targets: ['{api}']}}]\n"
        f"  - job_name: keel-worker\n    static_configs: [{{targets: ['{worker}']}}]\n"
    )
    port = _free_port()
    proc = subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "wb"),  # noqa: SIM115
    )  # fmt: skip
    try:

        def query(q: str) -> list[dict]:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": q}, timeout=5)
            except httpx.HTTPError:
                return []
            return r.json()["data"]["result"] if r.status_code == 200 else []

        def series(q: str) -> dict[str, float]:
            return {x["metric"].get("job", ""): float(x["value"][1]) for x in query(q)}

        up = wait_for(
            lambda: (s := series("up")) and len(s) == 2 and all(s.values()) and s, 300, what="both targets up"
        )
        assert set(up) == {"keel-api", "keel-worker"}
        done = wait_for(
            lambda: (s := series('keel_jobs_finished_total{status="succeeded"}')) and len(s) == 2 and s,
            180,
            what="keel_jobs_finished_total from both targets",
        )
        assert all(v >= 1 for v in done.values()), done
        assert "keel-api" in series("keel_queue_depth") and "keel-worker" not in series("keel_queue_depth")
        assert series('sum by (job) (keel_job_stage_seconds_count{stage="training"})')["keel-api"] >= 1
        # rate() needs two scrapes inside its window while requests arrive: right after `up`, Prometheus may
        # hold one scrape of the API, and the worker's own series can answer first, so wait for the API's.
        p90 = "histogram_quantile(0.9, sum by (le, job) (rate(keel_http_request_duration_seconds_bucket[1m])))"

        def api_p90() -> dict[str, float] | None:
            httpx.get(f"{live_url}/healthz", timeout=5)
            s = series(p90)
            return s if "keel-api" in s else None

        assert "keel-api" in wait_for(api_p90, 120, what="p90 request latency from the API")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
