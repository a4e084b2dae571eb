"""GET /v1/fine_tuning/jobs stays cheap however many jobs a tenant has: the page and the metadata filter are
SQL (LIMIT, WHERE), and the number of statements a request issues does not grow with the tenant's jobs.

Counted with a ``before_cursor_execute`` listener on the engine, not timed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import delete, event, insert, select

from tests.factories import chat_rows, to_jsonl
from tests.fixtures.service import auth, upload

N_JOBS = 5000


@contextmanager
def statements() -> Iterator[list[str]]:
    from core.db import get_engine

    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(" ".join(statement.split()))

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _tenant_with_a_job(client, name: str) -> tuple[str, str, str, dict]:
    """A new tenant, its key, one job it made through the API and that job's row (a template for bulk rows)."""
    from core.db import session_scope
    from core.jobs.models import Job
    from core.tenants.service import create_tenant

    with session_scope() as s:
        tenant, key = create_tenant(s, name)
        tenant_id = tenant.id
    fid = upload(client, key, to_jsonl(chat_rows(16))).json()["id"]
    r = client.post("/v1/fine_tuning/jobs", headers=auth(key), json={"model": "micro", "training_file": fid})
    assert r.status_code == 200, r.text
    first = r.json()["id"]
    with session_scope() as s:
        template = dict(s.execute(select(Job.__table__).where(Job.id == first)).mappings().one())
    return tenant_id, key, first, template


@pytest.fixture
def crowded(client, keys):
    """A tenant with one job made through the API and N_JOBS more inserted in bulk (removed afterwards)."""
    from core.db import session_scope
    from core.ids import new_id
    from core.jobs.models import Job

    tenant, key, first, template = _tenant_with_a_job(client, "crowded")
    base = template["created_at"]
    rows = [
        {
            **template,
            "id": new_id("ftjob-"),
            "status": "queued",
            "idempotency_key": None,
            "created_at": base + 1 + i,
            "metadata": {"i": str(i), "team": "even" if i % 2 == 0 else "odd"},
        }
        for i in range(N_JOBS)
    ]
    with session_scope() as s:
        s.execute(insert(Job.__table__), rows)
    yield {"tenant": tenant, "key": key, "first": first, "newest": rows[-1]["id"], "ids": [r["id"] for r in rows]}
    client.post(f"/v1/fine_tuning/jobs/{first}/cancel", headers=auth(key))
    with session_scope() as s:
        s.execute(delete(Job).where(Job.tenant_id == tenant, Job.id != first))


def _get(client, key: str, query: str) -> tuple[dict, list[str]]:
    with statements() as seen:
        r = client.get(f"/v1/fine_tuning/jobs{query}", headers=auth(key))
    assert r.status_code == 200, r.text
    return r.json(), seen


def _bounded(seen: list[str]) -> None:
    """No statement reads the tenant's jobs without a LIMIT (the one ranked query over the queue for queue
    positions and the cursor's primary-key lookup aside)."""
    for sql in seen:
        if not (sql.startswith("SELECT") and re.search(r"\bFROM jobs\b", sql)) or "row_number()" in sql.lower():
            continue
        assert " LIMIT " in sql or re.search(r"WHERE jobs\.id = (\?|%\(\w+\)s(::VARCHAR)?)$", sql), sql


def test_list_jobs_limit_1_issues_few_statements_regardless_of_tenant_size(client, keys, crowded):
    key = crowded["key"]
    _get(client, key, "?limit=1")  # warm-up: the key's last_used_at write happens at most once a minute
    page, seen = _get(client, key, "?limit=1")
    assert [j["id"] for j in page["data"]] == [crowded["newest"]] and page["has_more"] is True
    _bounded(seen)
    assert len(seen) <= 6, seen  # the key, the page, the queue positions

    # with the tenant's other 5,000 jobs gone, the same request issues the very same statements
    from core.db import session_scope
    from core.jobs.models import Job

    with session_scope() as s:
        saved = [dict(r) for r in s.execute(select(Job.__table__).where(Job.id.in_(crowded["ids"]))).mappings()]
        s.execute(delete(Job).where(Job.id.in_(crowded["ids"])))
    try:
        small, seen_small = _get(client, key, "?limit=1")
        assert [j["id"] for j in small["data"]] == [crowded["first"]]
        assert len(seen_small) == len(seen), (seen_small, seen)
    finally:
        with session_scope() as s:
            s.execute(insert(Job.__table__), saved)


def test_metadata_filter_and_cursor_run_in_sql(client, crowded):
    key = crowded["key"]
    _get(client, key, "?limit=1")
    page, seen = _get(client, key, "?limit=5&metadata[i]=1234")
    assert len(page["data"]) == 1 and page["data"][0]["metadata"]["i"] == "1234" and page["has_more"] is False
    _bounded(seen)
    assert len(seen) <= 6, seen

    page, seen = _get(client, key, "?limit=3&metadata[team]=odd")
    assert [j["metadata"]["i"] for j in page["data"]] == ["4999", "4997", "4995"] and page["has_more"] is True
    _bounded(seen)
    nxt, seen_next = _get(client, key, f"?limit=3&metadata[team]=odd&after={page['data'][-1]['id']}")
    assert [j["metadata"]["i"] for j in nxt["data"]] == ["4993", "4991", "4989"]
    _bounded(seen_next)
    # a page of 3 queued jobs: one ranked query for all their queue positions
    assert len(seen) <= 4 and len(seen_next) <= 5, (seen, seen_next)


MIXED = ("queued", "succeeded", "running", "failed", "cancelled")


@pytest.fixture
def mixed(client, keys):
    """A tenant with 50 jobs cycling through MIXED, newest first; each succeeded job has its adapter artifact
    published as a result file."""
    from core.db import session_scope
    from core.files.models import File
    from core.ids import new_id
    from core.jobs.models import Job
    from core.results.models import Artifact

    tenant_id, key, first, template = _tenant_with_a_job(client, "mixed")
    with session_scope() as s:
        s.execute(delete(Job).where(Job.id == first))
    jobs = [
        {
            **template,
            "id": new_id("ftjob-"),
            "status": MIXED[(49 - i) % 5],
            "idempotency_key": None,
            "created_at": 10 + i,
        }
        for i in range(50)
    ]
    done = [j["id"] for j in jobs if j["status"] == "succeeded"]
    arts = [
        {"id": new_id("art-"), "job_id": j, "kind": "adapter", "storage_key": f"jobs/{j}/adapter.zip", "sha256": "0"}
        for j in done
    ]
    files = {
        j: {
            "id": new_id("file-"),
            "tenant_id": tenant_id,
            "filename": f"{j}-adapter.zip",
            "purpose": "fine-tune-results",
            "bytes": 1,
            "sha256": "0",
            "storage_key": f"jobs/{j}/adapter.zip",
            "status": "processed",
            "validation": {},
            "created_at": 10,
        }
        for j in done
    }
    with session_scope() as s:
        s.execute(insert(Job.__table__), jobs)
        s.execute(insert(Artifact.__table__), [{**a, "bytes": 1, "manifest": {}, "created_at": 10} for a in arts])
        s.execute(insert(File.__table__), list(files.values()))
    yield {"key": key, "result_file": {j: f["id"] for j, f in files.items()}}
    with session_scope() as s:
        s.execute(delete(Job).where(Job.tenant_id == tenant_id))


def _expected_positions(ids: list[str]) -> dict[str, int]:
    from core.db import session_scope
    from core.jobs.models import Job

    with session_scope() as s:
        queue = s.scalars(select(Job.id).where(Job.status == "queued").order_by(Job.created_at, Job.id)).all()
    return {job_id: queue.index(job_id) + 1 for job_id in ids if job_id in queue}


def test_a_page_costs_the_same_statements_for_2_jobs_as_for_50_mixed_jobs(client, mixed):
    key = mixed["key"]
    _get(client, key, "?limit=1")  # warm-up (the key's last_used_at)
    one, seen_one = _get(client, key, "?limit=1")
    two, seen_two = _get(client, key, "?limit=2")
    fifty, seen_fifty = _get(client, key, "?limit=50")
    assert [j["status"] for j in two["data"]] == ["queued", "succeeded"]
    assert len(fifty["data"]) == 50 and fifty["has_more"] is False
    # one ranked query for the queue positions and one for the result files, whatever the page holds
    assert len(seen_fifty) == len(seen_two), (seen_two, seen_fifty)
    assert len(seen_one) <= len(seen_two) <= 5, seen_two
    _bounded(seen_fifty)

    positions = _expected_positions([j["id"] for j in fifty["data"]])
    assert len(positions) == 10
    for job in fifty["data"]:
        assert job["queue_position"] == positions.get(job["id"]), job
        expected_files = [mixed["result_file"][job["id"]]] if job["status"] == "succeeded" else []
        assert job["result_files"] == expected_files, job
    # a single job's retrieval reports the same position as the page
    queued = next(j for j in fifty["data"] if j["status"] == "queued")
    r = client.get(f"/v1/fine_tuning/jobs/{queued['id']}", headers=auth(key))
    assert r.json()["queue_position"] == queued["queue_position"]
