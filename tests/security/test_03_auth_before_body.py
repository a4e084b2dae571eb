"""Item 3: a request without a valid key is refused before its body is read, and failed authentications are
rate-limited per client address."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from urllib.parse import urlparse

import httpx

from tests.fixtures.service import auth


def _raw_upload(url: str, authorization: str | None, announced: int, sent: int) -> tuple[bytes, float]:
    """Announce ``announced`` bytes of multipart body, send ``sent`` of them (from a thread, the server may stop
    reading) and return what the server answered within 5 s and how long it took."""
    u = urlparse(url)
    sock = socket.create_connection((u.hostname, u.port), timeout=5)
    head = (
        "POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=bnd\r\n"
        f"Content-Length: {announced}\r\n" + (f"Authorization: {authorization}\r\n" if authorization else "") + "\r\n"
    )
    payload = b'--bnd\r\nContent-Disposition: form-data; name="file"; filename="t.jsonl"\r\n\r\n'
    payload += b"x" * (sent - len(payload))

    def feed() -> None:
        with contextlib.suppress(OSError):  # the server answered and closed: what this test wants
            sock.sendall(head.encode() + payload)

    t0 = time.monotonic()
    threading.Thread(target=feed, daemon=True).start()
    answer = b""
    try:
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    except TimeoutError:
        pass
    finally:
        sock.close()
    return answer, time.monotonic() - t0


def test_unauthenticated_upload_is_refused_before_the_body(live_url, keys, client):
    for authorization in (None, "Bearer sk-keel-not-a-key"):
        answer, took = _raw_upload(live_url, authorization, announced=100 << 20, sent=1 << 20)
        assert answer.startswith(b"HTTP/1.1 401"), (authorization, answer[:200], took)
        assert took < 3.0, took
    # a revoked key is refused the same way, a JSON body included
    key = _revoked_key(keys["alice"])
    answer, took = _raw_upload(live_url, f"Bearer {key}", announced=100 << 20, sent=1 << 20)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    r = httpx.post(f"{live_url}/v1/fine_tuning/jobs", headers=auth(key), content=json.dumps({"model": "micro"}))
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


def _revoked_key(sibling: str) -> str:
    """A new key of ``sibling``'s tenant, revoked."""
    from core.db import session_scope
    from core.ids import now
    from core.tenants import repository
    from core.tenants.service import create_key, hash_key

    with session_scope() as s:
        row, key = create_key(s, repository.key_by_hash(s, hash_key(sibling)).tenant_id)
        row.revoked_at = now()
    return key


def test_failed_authentications_are_rate_limited_per_address(client, keys, monkeypatch):
    from api.auth import UNAUTHENTICATED
    from core.config import get_settings

    monkeypatch.setattr(get_settings(), "unauth_rate_limit_rps", 0.01)
    monkeypatch.setattr(get_settings(), "unauth_rate_limit_burst", 5)
    codes = [client.get("/v1/files", headers=auth("sk-keel-wrong")).status_code for _ in range(8)]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}, codes
    r = client.get("/v1/files")
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limit_exceeded" and "retry-after" in r.headers
    # a valid key from the same address (a NAT, loopback) is never refused for the address's failures
    assert client.get("/v1/files", headers=auth(keys["alice"])).status_code == 200
    UNAUTHENTICATED._buckets.clear()
