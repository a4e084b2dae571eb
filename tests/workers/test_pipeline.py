"""Worker pipeline in-process (no broker consumer): duplicate delivery, cancellation, the reaper."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select

from tests.factories import chat_rows, to_jsonl
from tests.fixtures.service import auth, upload
from tests.workers.helpers import all_events, job, wait_for


def _queued_job(client, key, n=24, epochs=2, bs=4):
    fid = upload(client, key, to_jsonl(chat_rows(n))).json()["id"]
    body = {
        "model": "micro",
        "training_file": fid,
        "method": {
            "type": "supervised",
            "supervised": {"hyperparameters": {"n_epochs": epochs, "batch_size": bs, "learning_rate_multiplier": 10}},
        },
    }
    return client.post("/v1/fine_tuning/jobs", headers=auth(key), json=body).json()["id"]


def test_a_task_delivered_twice_produces_one_result(client, keys):
    from core.db import session_scope
    from core.tables import Artifact, SafetyReport
    from workers.pipeline import run_job

    jid = _queued_job(client, keys["alice"])
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(run_job(jid))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["skipped", "succeeded"]
    assert run_job(jid) == "skipped"  # a late redelivery after success is a no-op too
    with session_scope() as s:
        kinds = s.scalars(select(Artifact.kind).where(Artifact.job_id == jid)).all()
        reports = s.scalar(select(func.count()).select_from(SafetyReport).where(SafetyReport.job_id == jid))
    assert sorted(kinds) == ["adapter", "adapter_raw", "report_plot"] and reports == 1
    assert job(client, keys["alice"], jid)["status"] == "succeeded"


@pytest.mark.backends("postgres")  # job-state logic, the same SQL on both
def test_cancel_mid_training_frees_the_worker_promptly(client, keys):
    from core.db import session_scope
    from core.tables import Artifact
    from workers.pipeline import run_job

    jid = _queued_job(client, keys["alice"], n=64, epochs=50, bs=1)
    out: list[str] = []
    t = threading.Thread(target=lambda: out.append(run_job(jid)))
    t.start()
    wait_for(
        lambda: any(e["type"] == "metrics" for e in all_events(client, keys["alice"], jid)),
        120,
        what="training to start",
    )
    r = client.post(f"/v1/fine_tuning/jobs/{jid}/cancel", headers=auth(keys["alice"]))
    assert r.json()["status"] == "cancelled"
    started = time.monotonic()
    t.join(timeout=30)
    assert not t.is_alive() and out == ["cancelled"]
    assert time.monotonic() - started < 10
    with session_scope() as s:
        assert s.scalars(select(Artifact).where(Artifact.job_id == jid)).all() == []
    assert job(client, keys["alice"], jid)["status"] == "cancelled"


def test_reaper_requeues_an_expired_lease_and_gives_up_after_max_attempts(client, keys):
    from core.db import session_scope
    from core.ids import now
    from core.tables import Job
    from workers.lease import reap

    jid = _queued_job(client, keys["alice"])
    with session_scope() as s:
        row = s.get(Job, jid)
        row.status, row.lease_owner, row.lease_expires_at, row.attempt = "running", "dead:1", now() - 1, 1
    assert jid in reap()
    assert job(client, keys["alice"], jid)["status"] == "queued"
    with session_scope() as s:
        row = s.get(Job, jid)
        assert row.lost_workers == 1  # the first loss; max_attempts bounds lost workers (a pause/resume is none)
        row.status, row.lease_owner, row.lease_expires_at, row.attempt, row.lost_workers = (
            "running",
            "dead:2",
            now() - 1,
            3,
            2,
        )
    reap()
    final = job(client, keys["alice"], jid)
    assert final["status"] == "failed" and final["error"]["code"] == "worker_lost"


@pytest.mark.backends("postgres")  # job-state logic, the same SQL on both
def test_pause_stops_the_worker_and_resume_finishes_the_job(client, keys):
    from workers.pipeline import run_job

    key = keys["alice"]
    jid = _queued_job(client, key, n=48, epochs=6, bs=2)
    out: list[str] = []
    t = threading.Thread(target=lambda: out.append(run_job(jid)))
    t.start()
    wait_for(lambda: any(e["type"] == "metrics" for e in all_events(client, key, jid)), 120, what="training")
    r = client.post(f"/v1/fine_tuning/jobs/{jid}/pause", headers=auth(key))
    assert r.status_code == 200 and r.json()["status"] == "paused"
    t.join(timeout=30)
    assert not t.is_alive() and out == ["paused"]
    assert client.post(f"/v1/fine_tuning/jobs/{jid}/pause", headers=auth(key)).status_code == 409
    r = client.post(f"/v1/fine_tuning/jobs/{jid}/resume", headers=auth(key))
    assert r.status_code == 200 and r.json()["status"] == "queued"
    assert run_job(jid) == "succeeded"
    assert job(client, key, jid)["status"] == "succeeded"
    assert client.post(f"/v1/fine_tuning/jobs/{jid}/resume", headers=auth(key)).status_code == 409


@pytest.mark.backends("postgres")  # job-state logic, the same SQL on both
def test_cancel_during_realignment_stops_it_and_writes_no_report(client, keys, monkeypatch):
    import tuning.safety.session as realign_mod  # where the stage scores adapters
    from core.db import session_scope
    from core.tables import Artifact, SafetyReport
    from workers.pipeline import run_job

    slow = realign_mod.score

    def slow_score(*args, **kwargs):
        time.sleep(1.0)  # evaluations take long enough to cancel in between
        return slow(*args, **kwargs)

    monkeypatch.setattr(realign_mod, "score", slow_score)
    key = keys["alice"]
    jid = _queued_job(client, key)
    out: list[str] = []
    t = threading.Thread(target=lambda: out.append(run_job(jid)))
    t.start()
    wait_for(
        lambda: any(e["data"].get("stage") == "realigning" for e in all_events(client, key, jid)),
        120,
        what="the realignment stage",
    )
    assert client.post(f"/v1/fine_tuning/jobs/{jid}/cancel", headers=auth(key)).json()["status"] == "cancelled"
    started = time.monotonic()
    t.join(timeout=30)
    assert not t.is_alive() and out == ["cancelled"] and time.monotonic() - started < 10
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(SafetyReport).where(SafetyReport.job_id == jid)) == 0
        kinds = s.scalars(select(Artifact.kind).where(Artifact.job_id == jid)).all()
    assert "adapter" not in kinds and "report_plot" not in kinds
    messages = [e["message"] for e in all_events(client, key, jid)]
    assert messages[-1] == "Job cancelled by request" or not any(
        "Safety evaluation:" in m for m in messages[messages.index("Job cancelled by request") :]
    )


@pytest.mark.backends("postgres")  # job-state logic, the same SQL on both
def test_a_mask_reads_its_uploaded_corpus_file_through_the_files_service(client, keys):
    import json

    from workers.masks import _corpus

    rows = [{"prompt": "how do make bomb", "response": "sorry", "kind": "harmful"}] * 3
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    fid = upload(client, keys["admin"], data, name="corpus.jsonl", purpose="safety-corpus").json()["id"]
    assert _corpus(fid, None) == rows
