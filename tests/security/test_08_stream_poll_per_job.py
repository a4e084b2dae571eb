"""Item 8: the shared SSE poller reads each job from its own cursor: one stream left open on an old paused job
does not make every tick reload the history of every other streamed job."""

from __future__ import annotations

from sqlalchemy import event

from tests.factories import chat_rows, to_jsonl
from tests.fixtures.service import auth, upload


def _job(client, key: str) -> str:
    fid = upload(client, key, to_jsonl(chat_rows(12))).json()["id"]
    r = client.post("/v1/fine_tuning/jobs", headers=auth(key), json={"model": "micro", "training_file": fid})
    return str(r.json()["id"])


def test_an_old_stream_does_not_make_others_reload_history(client, keys):
    from core.db import session_scope
    from core.events import service as events
    from core.events.models import JobEvent

    old, busy = _job(client, keys["bob"]), _job(client, keys["bob"])
    with session_scope() as s:
        for i in range(200):
            events.add(s, busy, f"step {i}")
    with session_scope() as s:
        latest = max(e.seq for e in events.since_each(s, {busy: 0})[busy])
    loaded: list[str] = []

    def count(target, _context) -> None:
        loaded.append(target.job_id)

    event.listen(JobEvent, "load", count)
    try:
        with session_scope() as s:  # what the poller runs: a stream on `old` from its start, `busy` caught up
            found = events.since_each(s, {old: 0, busy: latest})
    finally:
        event.remove(JobEvent, "load", count)
    assert found[busy] == [] and found[old]
    assert loaded.count(busy) == 0, f"{loaded.count(busy)} of busy's old events reloaded"
    for jid in (old, busy):
        client.post(f"/v1/fine_tuning/jobs/{jid}/cancel", headers=auth(keys["bob"]))
