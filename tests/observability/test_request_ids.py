"""Request ids: a header on every response, inside every error body (the openai client still parses it), and
on the structured log lines written while the request is handled; metrics observed per route template."""

from __future__ import annotations

import json
import logging

import openai
import pytest

from tests.fixtures.service import auth
from tests.observability.scrape import moved, parse


def test_every_response_has_a_request_id_and_errors_carry_it(client, keys):
    ok = client.get("/v1/fine_tuning/jobs", headers=auth(keys["alice"]))
    assert ok.status_code == 200 and ok.headers["x-request-id"].startswith("req_")
    for r in (
        client.get("/v1/fine_tuning/jobs/ftjob-nope", headers=auth(keys["alice"])),  # KeelError 404
        client.get("/v1/fine_tuning/jobs"),  # 401
        client.post("/v1/fine_tuning/jobs", headers=auth(keys["alice"]), json={"model": 3}),  # validation 400
        client.put("/v1/fine_tuning/jobs", headers=auth(keys["alice"])),  # 405 (Starlette HTTPException)
    ):
        assert r.status_code >= 400
        rid = r.headers["x-request-id"]
        assert r.json()["error"]["request_id"] == rid, (r.status_code, r.text)
    two = [client.get("/v1/files", headers=auth(keys["alice"])).headers["x-request-id"] for _ in range(2)]
    assert two[0] != two[1]


def test_a_client_request_id_is_kept_and_a_bad_one_replaced(client, keys):
    r = client.get("/v1/fine_tuning/jobs/ftjob-nope", headers={**auth(keys["alice"]), "X-Request-ID": "trace-42.a"})
    assert r.headers["x-request-id"] == "trace-42.a" and r.json()["error"]["request_id"] == "trace-42.a"
    r = client.get("/v1/files", headers={**auth(keys["alice"]), "X-Request-ID": "bad id\twith spaces"})
    assert r.headers["x-request-id"].startswith("req_")


def test_body_limit_errors_carry_the_request_id(client, keys):
    r = client.post(
        "/v1/fine_tuning/jobs",
        headers={**auth(keys["alice"]), "content-type": "application/json"},
        content=b"{" * (17 << 20),
    )
    assert r.status_code == 413 and r.json()["error"]["request_id"] == r.headers["x-request-id"]


def test_openai_client_parses_errors_with_request_id(live_url, keys):
    c = openai.OpenAI(api_key=keys["alice"], base_url=f"{live_url}/v1", max_retries=0)
    with pytest.raises(openai.NotFoundError) as info:
        c.fine_tuning.jobs.retrieve("ftjob-missing")
    err = info.value
    assert err.status_code == 404 and err.code == "not_found"
    assert err.body["request_id"] == err.response.headers["x-request-id"]  # type: ignore[index]
    assert err.request_id is None or isinstance(err.request_id, str)


def test_log_lines_are_json_with_request_and_tenant_ids(client, keys, capsys):
    from core.observability import logs

    logs.configure(json_lines=True)
    try:
        capsys.readouterr()
        r = client.get("/v1/fine_tuning/jobs/ftjob-nope", headers=auth(keys["alice"]))
        err = capsys.readouterr().err
    finally:
        logs.configure_from_settings()
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    http = [x for x in lines if x["logger"] == "keel.http" and x["request_id"] == r.headers["x-request-id"]]
    assert http, err
    line = http[0]
    assert line["tenant_id"].startswith("org-") and line["job_id"] == "ftjob-nope" and line["status"] == 404
    assert line["route"] == "/v1/fine_tuning/jobs/{job_id}" and {"ts", "level", "stage"} <= set(line)


def test_text_format_is_readable_and_carries_known_ids():
    from core.observability import logs

    rec = logging.LogRecord("keel.worker", logging.INFO, __file__, 1, "job %s started", ("ftjob-1",), None)
    with logs.scope(job_id="ftjob-1", stage="training"):
        logs.ContextFilter().filter(rec)
    text = logs.TextFormatter().format(rec)
    assert text.endswith("keel.worker: job ftjob-1 started [job_id=ftjob-1 stage=training]"), text
    assert logs.use_json("auto", embedded=False) and not logs.use_json("auto", embedded=True)
    access = logging.getLogger("uvicorn.access")
    saved = access.handlers[:], access.propagate
    try:
        access.handlers, access.propagate = [], False  # what `uvicorn --no-access-log` (keel serve) leaves
        logs.configure(json_lines=False)  # the embedded console: no line per request, only failing ones
        assert access.propagate is False, "keel serve's --no-access-log must stay in force"
        assert logging.getLogger("keel.http").getEffectiveLevel() == logging.WARNING
        logs.configure(json_lines=True)
        assert logging.getLogger("keel.http").getEffectiveLevel() == logging.INFO
        access.handlers, access.propagate = [logging.StreamHandler()], False  # `--access-log`: uvicorn's handler
        logs.configure(json_lines=True)
        assert access.propagate is True and not access.handlers  # ... now through Keel's formatter
    finally:
        access.handlers, access.propagate = saved
        logs.configure_from_settings()


def test_metrics_count_requests_by_route_template(client, keys):
    before = parse(client.get("/metrics").text)
    for _ in range(3):
        client.get("/v1/fine_tuning/jobs/ftjob-nope", headers=auth(keys["alice"]))
    after = parse(client.get("/metrics").text)
    name = "keel_http_request_duration_seconds_count"
    assert moved(before, after, name, route="/v1/fine_tuning/jobs/{job_id}", method="GET", status="404") == 3
    assert not any("ftjob-nope" in str(k) for k in after)  # raw paths never become label values
    assert ("keel_queue_depth", ()) in after


def test_metrics_token_when_configured(client, monkeypatch):
    from core.config import get_settings

    assert client.get("/metrics").status_code == 200  # open by default
    monkeypatch.setenv("KEEL_METRICS_TOKEN", "s3cret")
    get_settings.cache_clear()
    try:
        denied = client.get("/metrics")
        assert denied.status_code == 401 and denied.json()["error"]["request_id"] == denied.headers["x-request-id"]
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and "keel_queue_depth" in ok.text
    finally:
        monkeypatch.delenv("KEEL_METRICS_TOKEN")
        get_settings.cache_clear()
