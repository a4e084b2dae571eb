"""Item 7: a file invalid for a model is not tokenized again on every dry run, and upload validation and
token counting run in a pool of their own, not in the request thread pool every other route needs."""

from __future__ import annotations

import json
import threading

from tests.factories import chat_rows, to_jsonl
from tests.fixtures.service import auth, upload


def test_an_invalid_file_is_tokenized_once_per_model(client, keys, monkeypatch):
    from core.files import service as files_svc

    rows = chat_rows(12)
    rows[3]["messages"][-1]["content"] = " ".join(["zorp"] * 5000)  # over the micro model's context
    fid = client.post(
        "/v1/files",
        headers=auth(keys["alice"]),
        files={"file": ("t.jsonl", to_jsonl(rows))},
        data={"purpose": "fine-tune"},
    ).json()["id"]  # uploaded without a model: valid as JSONL, tokens not counted
    calls: list[int] = []
    real = files_svc.validate_stream

    def counted(*a, **kw):
        calls.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(files_svc, "validate_stream", counted)
    body = {"model": "micro", "training_file": fid, "dry_run": True}
    for _ in range(5):
        r = client.post("/v1/fine_tuning/jobs", headers=auth(keys["alice"]), json=body)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_training_file", r.text
        assert "too_long" in r.text or "tokens" in r.text, r.text
    assert len(calls) == 1, f"tokenized {len(calls)} times"


def test_upload_validation_and_job_token_counts_run_in_their_own_pool(client, keys, monkeypatch):
    from core.files import service as files_svc

    threads: list[str] = []
    real = files_svc.validate_stream

    def where(*a, **kw):
        threads.append(threading.current_thread().name)
        return real(*a, **kw)

    monkeypatch.setattr(files_svc, "validate_stream", where)
    r = upload(client, keys["alice"], to_jsonl(chat_rows(12)) + json.dumps(chat_rows(1)[0]).encode())
    assert r.status_code == 200, r.text
    fid = client.post(
        "/v1/files",
        headers=auth(keys["alice"]),
        files={"file": ("t.jsonl", to_jsonl(chat_rows(12)))},
        data={"purpose": "fine-tune"},
    ).json()["id"]
    body = {"model": "micro", "training_file": fid, "dry_run": True}
    assert client.post("/v1/fine_tuning/jobs", headers=auth(keys["alice"]), json=body).status_code == 200
    assert len(threads) == 3 and all(t.startswith("keel-validation") for t in threads), threads
