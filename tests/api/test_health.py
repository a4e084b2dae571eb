"""Liveness costs no database round trip (its latency is the event loop's, measured by bench/load.py);
readiness asks the database and says 503 when it does not answer."""

from __future__ import annotations

from tests.api.test_list_cost import statements


def test_healthz_touches_no_database_and_readyz_does(client):
    with statements() as seen:
        r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert seen == []
    with statements() as seen:
        r = client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert any("SELECT 1" in sql for sql in seen)


def test_readyz_is_503_when_the_database_does_not_answer(client, monkeypatch):
    from core.db import get_engine

    def refuse(*args, **kwargs):
        from sqlalchemy.exc import OperationalError

        raise OperationalError("connect", {}, ConnectionRefusedError("database down"))

    monkeypatch.setattr(get_engine().pool, "connect", refuse)
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200  # liveness does not follow the database


def test_the_api_process_hands_the_gil_to_its_event_loop_often(client):
    """CPU-bound request threads (upload validation) would otherwise hold the GIL for Python's default 5 ms
    slices while the event loop waits (bench/load.py measured /healthz p99 138 ms then, 36-43 ms at 1 ms)."""
    import sys

    from core.config import get_settings

    assert sys.getswitchinterval() == get_settings().api_switch_interval_s < 0.005
