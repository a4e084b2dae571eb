"""A job no worker can hold is refused at creation (KEEL_WORKER_MEMORY_BYTES), from the dry run's estimate of the
trainer's peak, which grows with the file's longest row; nothing is queued."""

from __future__ import annotations

from core.config import get_settings
from tests.factories import chat_rows, to_jsonl
from tests.fixtures.service import auth, upload


def _file(client, key, words: int) -> str:
    rows = chat_rows(16)
    rows[3]["messages"][0]["content"] = " ".join(["good movie"] * words)  # one long row
    return upload(client, key, to_jsonl(rows)).json()["id"]


def _dry(client, key, file_id: str):
    body = {"model": "micro", "training_file": file_id, "dry_run": True}
    return client.post("/v1/fine_tuning/jobs", headers=auth(key), json=body)


def test_the_estimate_depends_on_the_token_budget_until_a_row_exceeds_it(client, keys, monkeypatch):
    short, long = _file(client, keys["alice"], 1), _file(client, keys["alice"], 60)

    def peaks() -> tuple[int, int]:
        a, b = (_dry(client, keys["alice"], f).json()["estimated_peak_memory_bytes"] for f in (short, long))
        assert isinstance(a, int) and isinstance(b, int) and a > 0
        return a, b

    a, b = peaks()
    assert a == b  # both rows fit one micro-batch of the default budget: the budget sets the peak
    monkeypatch.setattr(get_settings(), "micro_batch_tokens", 32)
    small_a, small_b = peaks()
    assert small_a < a and small_b > small_a  # past the budget, the longest row is its own micro-batch


def test_a_job_over_the_worker_memory_is_refused(client, keys, monkeypatch):
    file_id = _file(client, keys["alice"], 60)
    peak = _dry(client, keys["alice"], file_id).json()["estimated_peak_memory_bytes"]
    monkeypatch.setattr(get_settings(), "worker_memory_bytes", peak - 1)
    before = client.get("/v1/fine_tuning/jobs?limit=100", headers=auth(keys["alice"])).json()["data"]
    for dry in (True, False):
        body = {"model": "micro", "training_file": file_id, "dry_run": dry}
        r = client.post("/v1/fine_tuning/jobs", headers=auth(keys["alice"]), json=body)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "job_exceeds_worker_memory"
    after = client.get("/v1/fine_tuning/jobs?limit=100", headers=auth(keys["alice"])).json()["data"]
    assert len(after) == len(before)
    monkeypatch.setattr(get_settings(), "worker_memory_bytes", peak)
    assert _dry(client, keys["alice"], file_id).status_code == 200
