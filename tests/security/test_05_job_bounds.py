"""Item 5: jobs have bounds. Caps on trained tokens and optimizer steps are checked at creation (and in the
dry run) with clear codes; a job running past KEEL_MAX_JOB_WALL_S fails with `timeout` and its worker stops;
the worker reads the training file from the store line by line."""

from __future__ import annotations

import threading
import types

from tests.factories import chat_rows, to_jsonl
from tests.fixtures.service import auth, upload


def _file(client, key: str) -> str:
    return str(upload(client, key, to_jsonl(chat_rows(12))).json()["id"])


def test_token_and_step_caps_are_checked_at_creation(client, keys, monkeypatch):
    from core.config import get_settings

    fid = _file(client, keys["alice"])
    body = {"model": "micro", "training_file": fid, "hyperparameters": {"n_epochs": 3, "batch_size": 1}}
    dry = client.post("/v1/fine_tuning/jobs", headers=auth(keys["alice"]), json={**body, "dry_run": True}).json()
    assert dry["total_steps"] == 36 and dry["trained_tokens"] > 0, dry

    monkeypatch.setattr(get_settings(), "max_job_tokens", dry["trained_tokens"] - 1)
    for extra in ({"dry_run": True}, {}):
        r = client.post("/v1/fine_tuning/jobs", headers=auth(keys["alice"]), json={**body, **extra})
        assert r.status_code == 400 and r.json()["error"]["code"] == "job_too_many_tokens", r.text
    monkeypatch.setattr(get_settings(), "max_job_tokens", dry["trained_tokens"])
    monkeypatch.setattr(get_settings(), "max_job_steps", 35)
    r = client.post("/v1/fine_tuning/jobs", headers=auth(keys["alice"]), json=body)
    assert r.status_code == 400 and r.json()["error"]["code"] == "job_too_many_steps", r.text
    assert r.json()["error"]["param"] == "hyperparameters.n_epochs"


def test_a_job_past_its_wall_time_fails_with_timeout(client, keys, monkeypatch):
    from sqlalchemy import update

    from core.config import get_settings
    from core.db import session_scope
    from core.jobs import repository as repo
    from core.jobs.models import Job
    from workers.progress import DbProgress

    fid = _file(client, keys["alice"])
    jid = client.post(
        "/v1/fine_tuning/jobs", headers=auth(keys["alice"]), json={"model": "micro", "training_file": fid}
    )
    jid = jid.json()["id"]
    with session_scope() as s:
        assert repo.claim(s, jid, "w:1:1", 60)
        s.execute(update(Job).where(Job.id == jid).values(started_at=Job.started_at - 120))  # two minutes ago
    progress = DbProgress(jid, types.SimpleNamespace(owner="w:1:1", lost=threading.Event()))  # type: ignore[arg-type]
    monkeypatch.setattr(get_settings(), "max_job_wall_s", 60.0)
    assert progress.should_stop()  # the worker stops at its next step
    job = client.get(f"/v1/fine_tuning/jobs/{jid}", headers=auth(keys["alice"])).json()
    assert job["status"] == "failed" and job["error"]["code"] == "timeout", job


def test_the_worker_reads_the_training_file_line_by_line(client, keys, monkeypatch):
    """load_context opens the stored file and reads it line by line (no get_bytes of the whole file)."""
    from core.storage import get_store
    from workers.context import load_context

    fid = _file(client, keys["alice"])
    r = client.post("/v1/fine_tuning/jobs", headers=auth(keys["alice"]), json={"model": "micro", "training_file": fid})
    jid = r.json()["id"]

    def whole(self, key: str) -> bytes:
        raise AssertionError(f"the whole of {key} was read into memory")

    monkeypatch.setattr(type(get_store()), "get_bytes", whole)
    assert len(load_context(jid, "w:1:1").train_examples) == 12
    client.post(f"/v1/fine_tuning/jobs/{jid}/cancel", headers=auth(keys["alice"]))
