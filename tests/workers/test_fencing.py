"""Fencing by attempt: a worker whose lease was taken over writes no artifact and no report for the job. Each
attempt writes its own store keys and scratch; a row is recorded only while (job, attempt, lease owner) still
holds the job, and a stale writer's bytes are removed."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, update

from tests.fixtures.service import auth
from tests.workers.helpers import all_events, queued_job, wait_for


def _take_over(job_id: str, owner: str) -> None:
    """The running attempt's lease lapses and another worker claims the job (attempt + 1), atomically."""
    from core.db import session_scope
    from core.jobs import lifecycle
    from core.tables import Job

    with session_scope() as s:
        s.execute(update(Job).where(Job.id == job_id).values(lease_expires_at=0))
        assert lifecycle.claim(s, job_id, owner)


def _rows(job_id: str) -> tuple[list[tuple[str, str]], dict | None]:
    from core.db import session_scope
    from core.results import service as results
    from core.tables import Artifact

    with session_scope() as s:
        arts = [(a.kind, a.storage_key) for a in s.scalars(select(Artifact).where(Artifact.job_id == job_id))]
        return arts, results.stored_report(s, job_id)


def test_two_attempts_only_the_lease_holder_records_artifacts_and_the_report(client, keys, tmp_path):
    from core.db import session_scope
    from core.jobs import lifecycle
    from core.results.states import ArtifactKind
    from workers.context import load_context
    from workers.lease import LeaseLost
    from workers.stages import realign
    from workers.stages.common import store_artifact

    key = keys["alice"]
    jid = queued_job(client, key)
    with session_scope() as s:
        assert lifecycle.claim(s, jid, "worker-a")
    a = load_context(jid, "worker-a")
    _take_over(jid, "worker-b")
    b = load_context(jid, "worker-b")
    assert (a.spec.attempt, b.spec.attempt) == (1, 2) and a.attempt_dir != b.attempt_dir
    plot = tmp_path / "plot.png"
    plot.write_bytes(b"\x89PNG stale")
    no_plot = tmp_path / "none.png"

    # the superseded attempt: refused, and the bytes it uploaded are gone
    with pytest.raises(LeaseLost):
        store_artifact(a, ArtifactKind.REPORT_PLOT, plot, "safety_report.png")
    assert not a.store.exists(a.key("safety_report.png"))
    with pytest.raises(LeaseLost):
        realign._save(a, {"passed": False, "who": "a"}, None, no_plot)
    assert _rows(jid) == ([], None)

    # the current attempt records under its own key
    plot.write_bytes(b"\x89PNG current")
    store_artifact(b, ArtifactKind.REPORT_PLOT, plot, "safety_report.png")
    realign._save(b, {"passed": True, "who": "b"}, None, no_plot)
    arts, report = _rows(jid)
    assert arts == [("report_plot", f"jobs/{jid}/attempt-2/safety_report.png")]
    assert b.store.get_bytes(arts[0][1]) == b"\x89PNG current"
    assert report is not None and report["who"] == "b" and report["passed"] is True

    # nor can the superseded attempt finish the job or publish a result file
    with session_scope() as s:
        assert not lifecycle.succeed(s, jid, "worker-a")
    assert client.get(f"/v1/fine_tuning/jobs/{jid}", headers=auth(key)).json()["status"] == "running"
    assert client.post(f"/v1/fine_tuning/jobs/{jid}/cancel", headers=auth(key)).status_code == 200


@pytest.mark.backends("postgres")  # the conditional UPDATE is covered on both above
def test_a_superseded_worker_stops_training_and_writes_nothing(client, keys):
    from workers.pipeline import run_job

    key = keys["alice"]
    jid = queued_job(client, key, n=64, epochs=50, bs=1)
    out: list[str] = []
    t = threading.Thread(target=lambda: out.append(run_job(jid)))
    t.start()
    wait_for(lambda: any(e["type"] == "metrics" for e in all_events(client, key, jid)), 120, what="training")
    _take_over(jid, "worker-b")
    t.join(timeout=60)
    assert not t.is_alive() and out == ["superseded"]
    assert _rows(jid) == ([], None)
    assert client.post(f"/v1/fine_tuning/jobs/{jid}/cancel", headers=auth(key)).status_code == 200
