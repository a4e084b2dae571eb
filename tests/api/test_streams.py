"""SSE event streams against a real server: events in order then `done`, a per-tenant cap (429), and no DB
connection held while a stream is open (a stream outliving the pool size doesn't starve other requests)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.factories import chat_rows, to_jsonl
from tests.fixtures.service import auth, upload


@pytest.fixture(scope="module")
def server(live_url):
    return live_url


def _job(client, key) -> str:
    fid = upload(client, key, to_jsonl(chat_rows(12))).json()["id"]
    return client.post("/v1/fine_tuning/jobs", headers=auth(key), json={"model": "micro", "training_file": fid}).json()[
        "id"
    ]


def test_open_streams_are_capped_per_tenant_and_hold_no_connection(client, keys, server, monkeypatch):
    from core.config import get_settings

    monkeypatch.setattr(get_settings(), "max_streams_per_tenant", 16)
    jid = _job(client, keys["bob"])
    url = f"{server}/v1/fine_tuning/jobs/{jid}/events?stream=true"
    with httpx.Client(timeout=10) as http:
        streams = [
            http.stream("GET", url, headers=auth(keys["bob"])) for _ in range(16)
        ]  # > the pool (5 + 10 overflow)
        opened = [s.__enter__() for s in streams]
        try:
            assert all(r.status_code == 200 for r in opened)
            over = http.get(url, headers=auth(keys["bob"]))
            assert over.status_code == 429 and over.headers["Retry-After"]
            assert over.json()["error"]["code"] == "too_many_streams"
            started = time.monotonic()
            assert http.get(f"{server}/readyz").status_code == 200  # the pool is not held by the streams
            assert http.get(url.replace(jid, jid), headers=auth(keys["alice"])).status_code == 404
            assert time.monotonic() - started < 5
            http.post(f"{server}/v1/fine_tuning/jobs/{jid}/cancel", headers=auth(keys["bob"]))
            text = "".join(opened[0].iter_text())
        finally:
            for s in streams:
                s.__exit__(None, None, None)
    assert "Created fine-tuning job" in text and "event: done" in text and '"cancelled"' in text


def test_a_stream_resumes_after_an_event_id(client, keys, server):
    key = keys["bob"]
    jid = _job(client, key)
    client.post(f"/v1/fine_tuning/jobs/{jid}/cancel", headers=auth(key))
    ids = [
        e["id"] for e in reversed(client.get(f"/v1/fine_tuning/jobs/{jid}/events", headers=auth(key)).json()["data"])
    ]
    url = f"{server}/v1/fine_tuning/jobs/{jid}/events?stream=true"

    def streamed(query: str = "", headers: dict[str, str] | None = None) -> list[str]:
        r = httpx.get(url + query, headers={**auth(key), **(headers or {})}, timeout=10)
        assert r.status_code == 200, r.text
        return [line[4:] for line in r.text.splitlines() if line.startswith("id: ")]

    assert streamed() == ids and len(ids) >= 3
    assert streamed(f"&after={ids[0]}") == ids[1:]
    assert streamed(headers={"Last-Event-ID": ids[1]}) == ids[2:]  # what a reconnecting EventSource sends
    r = httpx.get(url + "&after=ev-nope", headers=auth(key), timeout=10)
    assert r.status_code == 404 and r.json()["error"]["param"] == "after"


def test_one_poll_serves_every_open_stream(client, keys):
    """The streams of a process share one poller: a tick costs three statements (the streams' keys still
    active, statuses, then events) however many streams and jobs are open, and each stream gets its own job's
    events from its own cursor."""
    import asyncio

    from sqlalchemy import select

    from api.streams import _Hub
    from core.db import session_scope
    from core.events.models import JobEvent
    from core.tenants import repository
    from core.tenants.service import hash_key
    from tests.api.test_list_cost import statements

    key = keys["bob"]
    jobs = [_job(client, key) for _ in range(3)]
    for jid in jobs:
        client.post(f"/v1/fine_tuning/jobs/{jid}/cancel", headers=auth(key))
    with session_scope() as s:
        kid = repository.key_by_hash(s, hash_key(key)).id
        seqs = {
            j: list(s.scalars(select(JobEvent.seq).where(JobEvent.job_id == j).order_by(JobEvent.seq))) for j in jobs
        }

    async def two_ticks() -> tuple[list, list[list[str]], list[list[str]]]:
        hub = _Hub()
        subs = [hub.join(j, 0, kid) for j in jobs for _ in range(4)] + [hub.join(jobs[0], seqs[jobs[0]][1], kid)]
        assert hub.task is not None
        hub.task.cancel()  # tick by hand
        with statements() as seen:
            await hub.tick()
            first = [sub.inbox.get_nowait() for sub in subs]
            await hub.tick()
            second = [sub.inbox.get_nowait() for sub in subs]
        return seen, first, second

    seen, first, second = asyncio.run(two_ticks())
    assert len(seen) == 6, seen  # three per tick for 13 streams on 3 jobs
    expected = [len(seqs[j]) for j in jobs for _ in range(4)] + [len(seqs[jobs[0]]) - 2]
    assert [len(chunks) for chunks, final in first] == expected and all(final is None for _, final in first)
    assert second == [([], "cancelled")] * 13  # nothing new: the job is over
