"""The store janitor removes bytes no row references once they are older than the grace age: an old orphan
goes, a young one (an upload or artifact whose row is not committed yet) stays, and every row's bytes stay,
whether the row names one object (a file, an artifact) or a folder (a mask version). The scratch is never
swept."""

from __future__ import annotations

import itertools
import os
import time

import pytest

from tests.factories import chat_rows, to_jsonl
from tests.fixtures.service import auth, upload

HOUR = 3600
_models = itertools.count()


@pytest.fixture
def model_id(client, keys, micro) -> str:
    """A base model of its own: the ready mask version this test records must not become the current mask
    of the shared micro model, whose jobs in later tests would then look for its (fake) bytes."""
    mid = f"micro-janitor-{next(_models)}"
    body = {"id": mid, "path": micro["base"], "alignment_adapter": micro["alignment"], "safety_data": {}}
    r = client.post("/v1/admin/base_models", json=body, headers=auth(keys["admin"]))
    assert r.status_code == 200, r.text
    return mid


def _put(key: str, age_s: float) -> str:
    from core.storage import get_store

    store = get_store()
    store.put_bytes(key, b"bytes of " + key.encode())
    t = time.time() - age_s
    os.utime(store.root / key, (t, t))
    return key


def _age(key: str, age_s: float) -> None:
    from core.storage import get_store

    t = time.time() - age_s
    os.utime(get_store().root / key, (t, t))


def _layout(client, keys, model_id: str) -> dict[str, list[str]]:
    """Rows with old bytes, orphans older and younger than an hour, and old scratch."""
    from core.base_models import repository as models_repo
    from core.base_models.models import SafetyMask
    from core.db import session_scope
    from core.files.models import File
    from core.ids import new_id

    fid = upload(client, keys["alice"], to_jsonl(chat_rows(12))).json()["id"]
    with session_scope() as s:
        file_key = s.get(File, fid).storage_key
        mask = SafetyMask(
            base_model_id=model_id,
            version=models_repo.next_version(s, model_id),
            method="all",
            config={},
            config_hash="0",
            corpus_hash="0",
            status="ready",
            storage_key=f"masks/{model_id}/v-janitor-{new_id('')}",
        )
        s.add(mask)
        mask_key = mask.storage_key
    _age(file_key, 2 * HOUR)
    kept = [file_key, _put(f"{mask_key}/mask.safetensors", 2 * HOUR), _put(f"{mask_key}/meta.json", 2 * HOUR)]
    job = new_id("ftjob-")
    old = [
        _put(f"files/org-gone/{new_id('file-')}.jsonl", 2 * HOUR),  # a crash between write and commit
        _put(f"files/org-gone/.{new_id('file-')}.jsonl.tmp123", 2 * HOUR),  # a crash mid-write
        _put(f"jobs/{job}/attempt-1/adapter_raw.zip", 2 * HOUR),  # a superseded or killed attempt
        _put(f"masks/{model_id}/v7-{new_id('')}/mask.safetensors", 2 * HOUR),  # a superseded mask computation
    ]
    young = [
        _put(f"files/org-busy/{new_id('file-')}.jsonl", 60),  # an upload whose row is about to commit
        _put(f"jobs/{job}/attempt-2/adapter_raw.zip", 0),
    ]
    scratch = _put(f"work/{job}/train/checkpoint-1/adapter.bin", 2 * HOUR)
    return {"kept": kept + [scratch], "old": old, "young": young}


def test_janitor_removes_only_old_orphans(client, keys, model_id):
    from core.db import session_scope
    from core.janitor import sweep
    from core.storage import get_store

    layout = _layout(client, keys, model_id)
    store = get_store()
    with session_scope() as s:
        assert set(layout["old"]) <= set(sweep(s, HOUR, dry_run=True))
    assert all(store.exists(k) for k in layout["old"])  # a dry run removes nothing
    with session_scope() as s:
        removed = sweep(s, HOUR)
    assert set(layout["old"]) <= set(removed)
    assert not set(removed) & set(layout["kept"] + layout["young"])
    assert not any(store.exists(k) for k in layout["old"])
    assert all(store.exists(k) for k in layout["kept"] + layout["young"])


def test_the_worker_reaper_and_the_cli_run_the_janitor(client, keys, capsys, monkeypatch):
    from cli.main import main
    from core.config import get_settings
    from core.storage import get_store
    from workers.lease import Reaper

    store = get_store()
    orphan = _put("files/org-gone/file-reaped.jsonl", 2 * HOUR)
    monkeypatch.setattr(get_settings(), "janitor_interval_s", 0.0)
    Reaper().run_once()
    assert not store.exists(orphan)

    orphan = _put("files/org-gone/file-cli.jsonl", 2 * HOUR)
    young = _put("files/org-gone/file-cli-young.jsonl", 0)
    main(["janitor", "--grace-s", str(HOUR), "--dry-run"])
    assert store.exists(orphan) and orphan in capsys.readouterr().out
    main(["janitor", "--grace-s", str(HOUR)])
    out = capsys.readouterr().out
    assert not store.exists(orphan) and store.exists(young) and "removed 1 orphaned" in out
