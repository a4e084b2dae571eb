"""Item 4: per-tenant storage limits that deletes do not reset, each a clear 4xx with its own code."""

from __future__ import annotations

from tests.factories import chat_rows, to_jsonl
from tests.fixtures.service import auth, upload


def _fresh_tenant(name: str) -> str:
    from core.db import session_scope
    from core.tenants.service import create_tenant

    with session_scope() as s:
        _, key = create_tenant(s, name)
    return key


def test_upload_delete_upload_does_not_reset_the_daily_quota(client, keys, monkeypatch):
    from core.config import get_settings

    key, data = _fresh_tenant("quota-daily"), to_jsonl(chat_rows(12))
    monkeypatch.setattr(get_settings(), "max_upload_bytes_per_day", int(len(data) * 2.5))
    for _ in range(2):
        r = upload(client, key, data)
        assert r.status_code == 200, r.text
        assert client.delete(f"/v1/files/{r.json()['id']}", headers=auth(key)).status_code == 200
    r = upload(client, key, data)  # the third upload today, though nothing is stored any more
    assert r.status_code == 429 and r.json()["error"]["code"] == "upload_quota_exceeded", r.text


def test_stored_bytes_and_file_count_are_capped(client, keys, monkeypatch):
    from core.config import get_settings

    key, data = _fresh_tenant("quota-stored"), to_jsonl(chat_rows(12))
    monkeypatch.setattr(get_settings(), "max_stored_bytes_per_tenant", int(len(data) * 1.5))
    assert upload(client, key, data).status_code == 200
    r = upload(client, key, data)
    assert r.status_code == 403 and r.json()["error"]["code"] == "storage_quota_exceeded", r.text
    monkeypatch.setattr(get_settings(), "max_stored_bytes_per_tenant", 10**12)
    monkeypatch.setattr(get_settings(), "max_files_per_tenant", 2)
    assert upload(client, key, data).status_code == 200
    r = upload(client, key, data)
    assert r.status_code == 403 and r.json()["error"]["code"] == "too_many_files", r.text
    listed = client.get("/v1/files", headers=auth(key)).json()["data"]
    assert len(listed) == 2  # the refused uploads left no file behind


def test_the_janitor_removes_finished_jobs_scratch_and_expired_artifacts(client, keys, monkeypatch):
    from sqlalchemy import select, update

    from core.config import get_settings
    from core.db import session_scope
    from core.ids import new_id
    from core.janitor import sweep
    from core.jobs.models import Job
    from core.results.models import Artifact

    key = keys["alice"]
    fid = upload(client, key, to_jsonl(chat_rows(12))).json()["id"]
    done, live = (
        client.post("/v1/fine_tuning/jobs", headers=auth(key), json={"model": "micro", "training_file": fid}).json()[
            "id"
        ]
        for _ in range(2)
    )
    assert client.post(f"/v1/fine_tuning/jobs/{done}/cancel", headers=auth(key)).status_code == 200
    scratch = get_settings().scratch_dir
    for jid in (done, live):
        ckpt = scratch / jid / "attempt-1" / "train" / "checkpoints" / "step-4"
        ckpt.mkdir(parents=True)
        (ckpt / "optim.pt").write_bytes(b"x" * 1000)
    stale_copy = scratch / "mask-cache" / f"masks_gone_{new_id('')}"
    stale_copy.mkdir(parents=True)
    with session_scope() as s:
        s.execute(update(Job).where(Job.id == done).values(finished_at=Job.finished_at - 100 * 86_400))
        s.add(Artifact(job_id=done, kind="adapter_raw", storage_key=f"jobs/{done}/a.zip", sha256="0", bytes=1))
    monkeypatch.setattr(get_settings(), "artifact_ttl_days", 30)
    with session_scope() as s:
        sweep(s, 0)
    assert not (scratch / done).exists() and not stale_copy.exists()
    assert (scratch / live / "attempt-1" / "train" / "checkpoints" / "step-4" / "optim.pt").exists()  # still active
    with session_scope() as s:
        assert s.scalars(select(Artifact).where(Artifact.job_id == done)).all() == []
    client.post(f"/v1/fine_tuning/jobs/{live}/cancel", headers=auth(key))


def _finished_long_ago(job_id: str) -> None:
    from sqlalchemy import update

    from core.db import session_scope
    from core.jobs.models import Job

    with session_scope() as s:
        s.execute(update(Job).where(Job.id == job_id).values(finished_at=Job.finished_at - 86_400))


def test_a_job_that_asked_keeps_its_newest_complete_checkpoint_and_nothing_else(client, keys):
    from core.config import get_settings
    from core.db import session_scope
    from core.janitor import sweep

    key = keys["alice"]
    fid = upload(client, key, to_jsonl(chat_rows(12))).json()["id"]
    body = {"model": "micro", "training_file": fid, "keep_last_checkpoint": True}
    job = client.post("/v1/fine_tuning/jobs", headers=auth(key), json=body).json()
    assert job["keep_last_checkpoint"] is True
    assert client.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel", headers=auth(key)).status_code == 200
    root = get_settings().scratch_dir / job["id"]
    layout = {  # attempt 2 wrote the newest complete checkpoint; its step-12 was cut off mid-write
        "attempt-1/train/checkpoints/step-4": True,
        "attempt-2/train/checkpoints/step-8": True,
        "attempt-2/train/checkpoints/step-12": False,
        "attempt-2/bundle": False,
    }
    for rel, complete in layout.items():
        (root / rel).mkdir(parents=True)
        (root / rel / "optim.pt").write_bytes(b"x" * 100)
        if complete:
            (root / rel / "trainer_state.json").write_text("{}")
    (root / "attempt-2" / "adapter.zip").write_bytes(b"PK")
    _finished_long_ago(job["id"])
    for _ in range(2):  # a second sweep finds nothing more to remove
        with session_scope() as s:
            sweep(s, 0)
        left = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        kept = "attempt-2/train/checkpoints/step-8"
        assert left == [f"{kept}/optim.pt", f"{kept}/trainer_state.json"]


def test_mask_versions_past_the_kept_count_expire_unless_a_live_job_pinned_one(client, keys, micro, monkeypatch):
    from sqlalchemy import update

    from core.base_models.models import SafetyMask
    from core.config import get_settings
    from core.db import session_scope
    from core.ids import new_id
    from core.janitor import sweep
    from core.jobs.models import Job
    from core.storage import get_store
    from tests.fixtures.service import register_micro

    mid = register_micro(client, keys["admin"], micro, f"micro-expire-{new_id('')[-8:]}")
    store, ids = get_store(), []
    with session_scope() as s:
        for version in range(1, 5):
            key = f"masks/{mid}/v{version}"
            store.put_bytes(f"{key}/mask.safetensors", b"m" * 64)
            mask = SafetyMask(base_model_id=mid, version=version, method="all", config={}, config_hash="c",
                              corpus_hash="c", status="ready", storage_key=key, finished_at=1)  # fmt: skip
            s.add(mask)
            s.flush()
            ids.append(mask.id)
    fid = upload(client, keys["alice"], to_jsonl(chat_rows(12))).json()["id"]
    body = {"model": "micro", "training_file": fid}
    live = client.post("/v1/fine_tuning/jobs", headers=auth(keys["alice"]), json=body)
    with session_scope() as s:  # a queued job pinned version 1
        s.execute(update(Job).where(Job.id == live.json()["id"]).values(mask_id=ids[0]))
    monkeypatch.setattr(get_settings(), "mask_versions_kept", 2)
    with session_scope() as s:
        sweep(s, 0)
    with session_scope() as s:
        rows = {m.version: m for m in s.query(SafetyMask).filter(SafetyMask.base_model_id == mid)}
        assert {v: str(m.status) for v, m in rows.items()} == {1: "ready", 2: "expired", 3: "ready", 4: "ready"}
        assert rows[2].storage_key is None
    assert not store.exists(f"masks/{mid}/v2/mask.safetensors")  # the same sweep removed the orphaned bytes
    assert all(store.exists(f"masks/{mid}/v{v}/mask.safetensors") for v in (1, 3, 4))
    client.post(f"/v1/fine_tuning/jobs/{live.json()['id']}/cancel", headers=auth(keys["alice"]))
