"""Item 11: the races. Resume is guarded on `paused` in its UPDATE; pausing and resuming does not count as a
lost worker; a superseded attempt's steps and checkpoints are not recorded and it trains in its own
directory; the SSE slot counter is consistent under concurrent takes and gives."""

from __future__ import annotations

import threading
import types

import pytest
from sqlalchemy import update

from tests.factories import chat_rows, to_jsonl
from tests.fixtures.service import auth, upload


def _job(client, key: str) -> str:
    fid = upload(client, key, to_jsonl(chat_rows(12))).json()["id"]
    r = client.post("/v1/fine_tuning/jobs", headers=auth(key), json={"model": "micro", "training_file": fid})
    return str(r.json()["id"])


def _tenant(key: str) -> str:
    from core.db import session_scope
    from core.tenants import repository
    from core.tenants.service import hash_key

    with session_scope() as s:
        return repository.key_by_hash(s, hash_key(key)).tenant_id


def _status(job_id: str) -> str:
    from core.db import session_scope
    from core.jobs import service as svc

    with session_scope() as s:
        return svc.job_statuses(s, [job_id])[job_id]


def test_resume_of_a_job_that_started_running_meanwhile_is_refused(client, keys, monkeypatch):
    from core.db import session_scope
    from core.errors import Conflict
    from core.ids import now
    from core.jobs import service as svc
    from core.jobs.models import Job

    jid = _job(client, keys["alice"])
    assert client.post(f"/v1/fine_tuning/jobs/{jid}/pause", headers=auth(keys["alice"])).status_code == 200
    real_get = svc.get_job

    def read_then_lose_the_race(session, tenant_id, job_id, *a, **kw):
        job = real_get(session, tenant_id, job_id, *a, **kw)  # read as paused...
        session.execute(  # ...and a worker's claim lands before our UPDATE
            update(Job)
            .where(Job.id == job_id)
            .values(status="running", lease_owner="w:1:1", lease_expires_at=now() + 3600),
            execution_options={"synchronize_session": False},
        )
        return job

    monkeypatch.setattr(svc, "get_job", read_then_lose_the_race)
    with pytest.raises(Conflict), session_scope() as s:
        svc.resume_job(s, _tenant(keys["alice"]), jid)
    monkeypatch.undo()
    assert _status(jid) == "paused"  # the unit of work rolled back; the running job was never re-queued


def test_pause_and_resume_are_not_lost_workers(client, keys, stack, monkeypatch):
    from core.config import get_settings
    from core.db import session_scope
    from core.jobs import lifecycle
    from core.jobs import repository as repo
    from core.jobs import service as svc
    from core.jobs.models import Job

    monkeypatch.setattr(get_settings(), "max_attempts", 3)
    jid, tenant = _job(client, keys["alice"]), _tenant(keys["alice"])
    for i in range(3):  # a worker claims it, the tenant pauses and resumes it: three times
        with session_scope() as s:
            assert repo.claim(s, jid, f"w:{i}:1", 60)
        with session_scope() as s:
            svc.pause_job(s, tenant, jid)
        with session_scope() as s:
            svc.resume_job(s, tenant, jid)
    with session_scope() as s:
        assert repo.claim(s, jid, "w:9:1", 60)
        s.execute(update(Job).where(Job.id == jid).values(lease_expires_at=1))  # that worker dies
    with session_scope() as s:
        lifecycle.reap(s)
    assert _status(jid) == "queued"  # lost once: requeued, not failed as "lost 4 times"
    client.post(f"/v1/fine_tuning/jobs/{jid}/cancel", headers=auth(keys["alice"]))


def test_a_superseded_attempt_records_no_steps_or_checkpoints(client, keys):
    from sqlalchemy import select

    from core.db import session_scope
    from core.events.models import Checkpoint, JobEvent
    from core.jobs import repository as repo
    from core.jobs.models import Job
    from workers.progress import DbProgress

    jid = _job(client, keys["alice"])
    with session_scope() as s:
        assert repo.claim(s, jid, "old:1:1", 60)  # attempt 1
    stale = DbProgress(jid, types.SimpleNamespace(owner="old:1:1", lost=threading.Event()))  # type: ignore[arg-type]
    stale.attempt = 1
    with session_scope() as s:
        s.execute(update(Job).where(Job.id == jid).values(lease_expires_at=1))
    with session_scope() as s:
        assert repo.claim(s, jid, "new:2:1", 60)  # attempt 2 takes over; attempt 1 keeps running
    stale.on_step(4, 4, {"loss": 1.0, "trained_tokens": 10})
    stale.on_checkpoint(4, "/scratch/attempt-1/train/checkpoints/step-4", {"loss": 1.0})
    with session_scope() as s:
        assert s.scalars(select(Checkpoint).where(Checkpoint.job_id == jid)).all() == []
        assert s.scalars(select(JobEvent).where(JobEvent.job_id == jid, JobEvent.type == "metrics")).all() == []
    assert stale.should_stop()
    client.post(f"/v1/fine_tuning/jobs/{jid}/cancel", headers=auth(keys["alice"]))


def test_each_attempt_trains_in_its_own_directory_from_the_newest_checkpoint(tmp_path, monkeypatch):
    from core.config import get_settings
    from workers.context import JobContext
    from workers.stages import train

    monkeypatch.setattr(get_settings(), "work_dir", tmp_path)
    spec = types.SimpleNamespace(job_id="ftjob-x", attempt=3)
    ctx = JobContext(spec=spec, owner="w", train_examples=[], valid_examples=None, store=None)  # type: ignore[arg-type]
    for attempt, step in ((1, 8), (2, 4)):
        ck = tmp_path / "ftjob-x" / f"attempt-{attempt}" / "train" / "checkpoints" / f"step-{step}"
        ck.mkdir(parents=True)
        (ck / "trainer_state.json").write_text(f'{{"step": {step}}}')
    out = train.train_dir(ctx)
    assert out == tmp_path / "ftjob-x" / "attempt-3" / "train"
    assert (out / "checkpoints" / "step-8" / "trainer_state.json").exists()


def test_stream_slots_survive_concurrent_takes_and_gives():
    from api.streams import _StreamSlots
    from core.config import get_settings

    slots, n, threads = _StreamSlots(), 2000, 8
    cap = get_settings().max_streams_per_tenant
    object.__setattr__(get_settings(), "max_streams_per_tenant", 10**9)
    try:

        def churn() -> None:
            for _ in range(n):
                slots.take("t")
                slots.give("t")

        ts = [threading.Thread(target=churn) for _ in range(threads)]
        import sys

        old = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)  # switch threads as often as possible
        try:
            for t in ts:
                t.start()
            for t in ts:
                t.join()
        finally:
            sys.setswitchinterval(old)
    finally:
        object.__setattr__(get_settings(), "max_streams_per_tenant", cap)
    assert slots.open.get("t", 0) == 0, slots.open
