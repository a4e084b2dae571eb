"""Guarded transitions on a real database: races between cancel, finish and the reaper resolve to one winner."""

from __future__ import annotations

from tests.factories import chat_rows, to_jsonl
from tests.fixtures.service import auth, upload


def _job(client, key):
    fid = upload(client, key, to_jsonl(chat_rows(16))).json()["id"]
    r = client.post("/v1/fine_tuning/jobs", headers=auth(key), json={"model": "micro", "training_file": fid})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def test_a_finish_after_cancel_does_not_overwrite_it(client, keys):
    from core.db import session_scope
    from core.jobs import lifecycle
    from core.jobs.states import JobStatus

    jid = _job(client, keys["alice"])
    with session_scope() as s:
        assert lifecycle.claim(s, jid, "w:1")
    assert client.post(f"/v1/fine_tuning/jobs/{jid}/cancel", headers=auth(keys["alice"])).json()["status"] == (
        "cancelled"
    )
    with session_scope() as s:
        assert not lifecycle.succeed(s, jid, "w:1")
        assert not lifecycle.finish(s, jid, "w:1", JobStatus.FAILED, "late failure")
        assert not lifecycle.renew(s, jid, "w:1")
    assert client.get(f"/v1/fine_tuning/jobs/{jid}", headers=auth(keys["alice"])).json()["status"] == "cancelled"


def test_only_the_lease_owner_finishes_and_a_requeue_resends(client, keys):
    from core.db import session_scope
    from core.jobs import lifecycle

    jid = _job(client, keys["alice"])
    with session_scope() as s:
        assert lifecycle.claim(s, jid, "w:1")
        assert not lifecycle.claim(s, jid, "w:2")  # lease still valid
        assert not lifecycle.succeed(s, jid, "w:2")
        assert lifecycle.requeue(s, jid, "w:1", "Worker shutting down")
        assert not lifecycle.requeue(s, jid, "w:1", "twice")
    job = client.get(f"/v1/fine_tuning/jobs/{jid}", headers=auth(keys["alice"])).json()
    assert job["status"] == "queued" and job["attempt"] == 1
    with session_scope() as s:
        assert lifecycle.claim(s, jid, "w:2")
        assert lifecycle.fail(s, jid, "w:2", "internal_error", "boom")


def test_the_reaper_resends_only_what_the_broker_lost(client, keys):
    from core.db import session_scope
    from core.ids import now
    from core.jobs import lifecycle
    from core.jobs import repository as repo

    jid = _job(client, keys["alice"])
    with session_scope() as s:
        for job in repo.stale_queued(s, now() + 1):
            job.dispatched_at = now() - 3600  # every queued job looks unclaimed for an hour
        queued = repo.queued_count(s)
    with session_scope() as s:
        assert lifecycle.reap(s, broker_backlog=queued) == []  # every message is still in the broker
    with session_scope() as s:
        resent = lifecycle.reap(s, broker_backlog=queued - 1)
    assert len(resent) == 1  # one message missing: the oldest stale job is re-sent once
    with session_scope() as s:
        assert jid in lifecycle.reap(s, broker_backlog=None) or resent == [jid]
    client.post(f"/v1/fine_tuning/jobs/{jid}/cancel", headers=auth(keys["alice"]))


def test_what_an_attempt_measured_stays_out_of_a_retry_and_feeds_the_next_estimate(client, keys):
    from core.db import session_scope
    from core.jobs import lifecycle

    jid = _job(client, keys["alice"])
    with session_scope() as s:
        assert lifecycle.claim(s, jid, "w:1")
        lifecycle.record_training(s, jid, 4000, 800.0, 5.0, "trained", {})
        lifecycle.record_realign(s, jid, 7.0)
        assert lifecycle.requeue(s, jid, "w:1", "Worker shutting down")
        assert lifecycle.claim(s, jid, "w:2")
        retry = lifecycle.snapshot(s, jid)
    requested = {"n_epochs", "batch_size", "learning_rate_multiplier"}
    assert set(retry.hyperparameters) == requested and set(retry.spec_echo["hyperparameters"]) == requested
    with session_scope() as s:
        lifecycle.record_training(s, jid, 4000, 800.0, 5.0, "trained", {})
        lifecycle.record_realign(s, jid, 7.0)
        assert lifecycle.succeed(s, jid, "w:2")
    fid = upload(client, keys["alice"], to_jsonl(chat_rows(16))).json()["id"]
    body = {"model": "micro", "training_file": fid, "dry_run": True}
    plan = client.post("/v1/fine_tuning/jobs", headers=auth(keys["alice"]), json=body).json()
    assert plan["estimated_realign_seconds"] == 7.0
    assert plan["estimated_train_seconds"] == round(plan["trained_tokens"] / 800.0, 1)
