"""Item 12: the small ones, one test each."""

from __future__ import annotations

import argparse
import os
import stat
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.factories import chat_rows, to_jsonl
from tests.fixtures.service import auth, upload

REPO = Path(__file__).resolve().parents[2]


def _job(client, key: str, **extra) -> str:
    fid = upload(client, key, to_jsonl(chat_rows(12))).json()["id"]
    r = client.post("/v1/fine_tuning/jobs", headers=auth(key), json={"model": "micro", "training_file": fid, **extra})
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def _key_row(key: str):
    from core.tenants import repository
    from core.tenants.service import hash_key

    return lambda s: repository.key_by_hash(s, hash_key(key))


def test_a_metadata_filter_key_with_a_quote_is_400(client, keys):
    for key in ('a"b', "a\\b"):
        r = client.get(f"/v1/fine_tuning/jobs?metadata[{key}]=x", headers=auth(keys["alice"]))
        assert r.status_code == 400, r.text
    assert client.get("/v1/fine_tuning/jobs?metadata[a.b-c]=x", headers=auth(keys["alice"])).status_code == 200


def test_lora_target_modules_are_bounded_and_distinct(client, keys, micro):
    """On a base model without an alignment adapter (whose targets are the tenant's to choose): duplicates
    and absurd lists are a 400 from the schema, not a list of module names checked one by one."""
    body = {"id": "micro-no-adapter", "path": micro["base"]}
    assert client.post("/v1/admin/base_models", json=body, headers=auth(keys["admin"])).status_code in (200, 409)
    fid = upload(client, keys["alice"], to_jsonl(chat_rows(12))).json()["id"]
    base = {"model": "micro-no-adapter", "training_file": fid, "dry_run": True}
    ok = client.post(
        "/v1/fine_tuning/jobs", headers=auth(keys["alice"]), json={**base, "lora": {"target_modules": ["q_proj"]}}
    )
    assert ok.status_code == 200, ok.text
    for modules in (["q_proj", "q_proj"], ["q_proj"] * 1000, ["x" * 5000]):
        r = client.post(
            "/v1/fine_tuning/jobs", headers=auth(keys["alice"]), json={**base, "lora": {"target_modules": modules}}
        )
        assert r.status_code == 400, (modules[:2], r.text)
        assert r.json()["error"]["param"] == "lora.target_modules", r.text


def test_models_list_is_bounded(client, keys, monkeypatch):
    from sqlalchemy import update

    from core.db import session_scope
    from core.jobs import service as jobs_svc
    from core.jobs.models import Job

    monkeypatch.setattr(jobs_svc, "MAX_LISTED_MODELS", 1)
    ids = [_job(client, keys["bob"], suffix=f"m{i}") for i in range(2)]
    with session_scope() as s:
        for i, jid in enumerate(ids):
            values = {"status": "succeeded", "fine_tuned_model": f"ft:micro:bob:{jid}", "finished_at": 1000 + i}
            s.execute(update(Job).where(Job.id == jid).values(**values))
    r = client.get("/v1/models", headers=auth(keys["bob"]))
    tuned = [m["id"] for m in r.json()["data"] if m["id"].startswith("ft:")]
    assert tuned == [f"ft:micro:bob:{ids[1]}"] and r.json()["has_more"] is True, r.json()
    r = client.get(f"/v1/models/ft:micro:bob:{ids[0]}", headers=auth(keys["bob"]))  # the older one still resolves
    assert r.status_code == 200 and r.json()["fine_tuning_job_id"] == ids[0]


def test_no_pickle_is_loaded_from_the_scratch_volume():
    """A checkpoint on the shared scratch volume is data: torch.load must never unpickle arbitrary objects."""
    offenders = [
        f"{p.relative_to(REPO)}"
        for d in ("tuning", "workers", "core")
        for p in (REPO / d).rglob("*.py")
        if "weights_only=False" in p.read_text()
    ]
    assert offenders == []


@pytest.mark.parametrize("model_id", ["../etc", "a/../b", "a/./b", "/abs", "a//b"])
def test_base_model_ids_cannot_walk_paths(client, keys, micro, model_id):
    body = {"id": model_id, "path": micro["base"]}
    r = client.post("/v1/admin/base_models", json=body, headers=auth(keys["admin"]))
    assert r.status_code == 400, r.text


def test_context_length_is_bounded(client, keys, micro):
    body = {"id": "micro-huge-context", "path": micro["base"], "context_length": 10**12}
    r = client.post("/v1/admin/base_models", json=body, headers=auth(keys["admin"]))
    assert r.status_code == 400, r.text


def test_serve_banner_hides_passwords(monkeypatch, capsys):
    from cli.main import _banner
    from core.config import get_settings

    monkeypatch.setattr(get_settings(), "database_url", "postgresql+psycopg://keel:db-s3cret@db:5432/keel")
    monkeypatch.setattr(get_settings(), "broker_url", "redis://:br0ker-s3cret@redis:6379/0")
    sup = argparse.Namespace(children=[])
    _banner(argparse.Namespace(host="127.0.0.1", port=8000), {"admin": "a", "user": "u"}, sup)  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert "db-s3cret" not in out and "br0ker-s3cret" not in out, out
    assert "keel:***@db:5432/keel" in out and ":***@redis:6379/0" in out, out


def test_dev_keys_file_is_never_readable_by_others(stack, monkeypatch, tmp_path):
    """Created owner-only: not written world-readable and chmod-ed afterwards (a crash or a reader in
    between saw the keys)."""
    from core.bootstrap import dev_keys
    from core.config import get_settings

    monkeypatch.setattr(get_settings(), "data_dir", tmp_path)
    monkeypatch.setattr(Path, "chmod", lambda self, mode: None)  # what a crash right after the write leaves
    old = os.umask(0o022)
    try:
        dev_keys()
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "dev-keys.json").stat().st_mode)
    assert mode == 0o600, oct(mode)


def test_a_revoked_bootstrap_admin_key_is_not_present(stack):
    import secrets

    from core.bootstrap import ensure_admin_key
    from core.db import session_scope
    from core.ids import now

    key = f"sk-keel-boot-{secrets.token_urlsafe(16)}"
    ensure_admin_key(key)
    with session_scope() as s:
        _key_row(key)(s).revoked_at = now()
    with pytest.raises(ValueError, match="revoked"):
        ensure_admin_key(key)


def test_streams_end_when_their_key_is_revoked(client, keys, live_url):
    from core.db import session_scope
    from core.ids import now
    from core.tenants.service import create_key

    with session_scope() as s:
        _, key = create_key(s, _key_row(keys["alice"])(s).tenant_id)
    jid = _job(client, key)
    got: list[str] = []

    def listen() -> None:
        with httpx.stream(
            "GET", f"{live_url}/v1/fine_tuning/jobs/{jid}/events?stream=true", headers=auth(key), timeout=30
        ) as r:
            for line in r.iter_lines():
                got.append(line)

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    time.sleep(1.5)
    with session_scope() as s:
        _key_row(key)(s).revoked_at = now()
    t.join(timeout=8)
    assert not t.is_alive(), "the stream stayed open after its key was revoked"
    assert "event: error" in got and any("invalid_api_key" in line for line in got), got
    client.post(f"/v1/fine_tuning/jobs/{jid}/cancel", headers=auth(keys["alice"]))
