"""Per-tenant protections: request rate per key (429 + Retry-After), active-job quota, fair scheduling."""

from __future__ import annotations

from tests.factories import chat_rows, to_jsonl
from tests.fixtures.service import auth, upload


def test_requests_over_the_rate_are_429_with_retry_after(client, keys, monkeypatch):
    from core.config import get_settings

    monkeypatch.setattr(get_settings(), "rate_limit_rps", 1.0)
    monkeypatch.setattr(get_settings(), "rate_limit_burst", 3)
    codes = [client.get("/v1/files?limit=1", headers=auth(keys["bob"])).status_code for _ in range(6)]
    assert codes[:3] == [200, 200, 200] and 429 in codes[3:]
    r = client.get("/v1/files?limit=1", headers=auth(keys["bob"]))
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert r.json()["error"]["type"] == "rate_limit_error"
    assert client.get("/v1/files?limit=1", headers=auth(keys["alice"])).status_code == 200  # per key


def test_active_job_quota_and_fair_deferral(client, keys, monkeypatch):
    from core.config import get_settings
    from core.db import session_scope
    from core.jobs import lifecycle

    fid = upload(client, keys["bob"], to_jsonl(chat_rows(12))).json()["id"]
    body = {"model": "micro", "training_file": fid}
    monkeypatch.setattr(get_settings(), "max_active_jobs_per_tenant", 2)
    first, second = (client.post("/v1/fine_tuning/jobs", headers=auth(keys["bob"]), json=body).json() for _ in "ab")
    r = client.post("/v1/fine_tuning/jobs", headers=auth(keys["bob"]), json=body)
    assert r.status_code == 429 and r.json()["error"]["code"] == "quota_exceeded"
    monkeypatch.setattr(get_settings(), "max_active_jobs_per_tenant", 1000)
    other = upload(client, keys["alice"], to_jsonl(chat_rows(12))).json()["id"]
    theirs = client.post(
        "/v1/fine_tuning/jobs", headers=auth(keys["alice"]), json={"model": "micro", "training_file": other}
    ).json()
    with session_scope() as s:
        assert lifecycle.claim(s, first["id"], "w:1")
        assert lifecycle.should_defer(s, second["id"])  # bob runs one, alice waits: bob's next job yields
        assert not lifecycle.should_defer(s, theirs["id"])
    for j in (first, second, theirs):
        key = keys["alice"] if j is theirs else keys["bob"]
        client.post(f"/v1/fine_tuning/jobs/{j['id']}/cancel", headers=auth(key))
    monkeypatch.setattr(get_settings(), "max_active_jobs_per_tenant", 2)
    again = client.post("/v1/fine_tuning/jobs", headers=auth(keys["bob"]), json=body)
    assert again.status_code == 200  # cancelling freed the quota
    client.post(f"/v1/fine_tuning/jobs/{again.json()['id']}/cancel", headers=auth(keys["bob"]))


def test_daily_upload_bytes_are_capped_per_tenant(client, keys, monkeypatch, stack):
    from pathlib import Path

    from core.config import get_settings

    data = to_jsonl(chat_rows(12))
    fresh = [
        client.post("/v1/admin/tenants", headers=auth(keys["admin"]), json={"name": f"quota-{i}"}).json()["api_key"]
        for i in range(2)
    ]
    monkeypatch.setattr(get_settings(), "max_upload_bytes_per_day", len(data) + 10)
    assert upload(client, fresh[0], data).status_code == 200
    stored = set(Path(stack["KEEL_STORE_DIR"]).rglob("*.jsonl"))
    r = upload(client, fresh[0], data)
    assert r.status_code == 429 and r.json()["error"]["code"] == "upload_quota_exceeded"
    assert set(Path(stack["KEEL_STORE_DIR"]).rglob("*.jsonl")) == stored  # the refused bytes are gone again
    assert upload(client, fresh[1], data).status_code == 200  # per tenant
