"""End to end through a real Celery worker process: upload → create → poll → events → download → load.

Runs on both backends: embedded (SQLite + kombu SQLAlchemy transport) and PostgreSQL + Redis.
"""

from __future__ import annotations

import io
import json
import zipfile

import pytest
import torch

from tests.factories import chat_rows, to_jsonl
from tests.fixtures.service import auth, upload
from tests.workers.helpers import (
    TERMINAL,
    all_events,
    cancel_leftover_jobs,
    finish_on_a_new_worker,
    first_checkpoint,
    job,
    start_worker,
    stop_worker,
    wait_for,
)

HP = {"n_epochs": 3, "batch_size": 4, "learning_rate_multiplier": 50}


@pytest.fixture(scope="module")
def worker(stack, keys, tmp_path_factory):
    cancel_leftover_jobs()
    proc = start_worker(stack, tmp_path_factory.mktemp("w") / "worker.log")
    yield proc
    stop_worker(proc)


def _create(client, key, file_id, **extra):
    body = {
        "model": "micro",
        "training_file": file_id,
        "seed": 7,
        "method": {"type": "supervised", "supervised": {"hyperparameters": HP}},
        **extra,
    }
    r = client.post("/v1/fine_tuning/jobs", headers=auth(key), json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_job_runs_end_to_end_and_adapter_changes_the_model(client, keys, worker, micro, tmp_path):
    fid = upload(client, keys["alice"], to_jsonl(chat_rows(24))).json()["id"]
    vid = upload(client, keys["alice"], to_jsonl(chat_rows(8, seed=9))).json()["id"]
    created = _create(client, keys["alice"], fid, validation_file=vid, suffix="e2e")
    seen_eta = []
    done = wait_for(
        lambda: (
            (j := job(client, keys["alice"], created["id"]))["status"] in TERMINAL
            or seen_eta.append(j["estimated_finish"])
        ),
        240,
        interval=0.2,
        what="the job to finish",
    )
    done = job(client, keys["alice"], created["id"])
    assert any(t and t >= done["created_at"] for t in seen_eta), seen_eta  # an ETA while it ran
    assert done["status"] == "succeeded", done
    assert done["fine_tuned_model"].startswith("ft:micro:") and done["trained_tokens"] > 0
    assert done["progress"] == 100.0 and done["finished_at"] >= done["created_at"]

    events = all_events(client, keys["alice"], created["id"])
    assert any(e["type"] == "metrics" and "loss" in e["data"] for e in events)
    stages = [e["data"].get("stage") for e in events if e["data"].get("stage")]
    assert stages[:2] == ["training", "realigning"] and "exporting" in stages
    ckpts = client.get(f"/v1/fine_tuning/jobs/{created['id']}/checkpoints", headers=auth(keys["alice"])).json()
    assert ckpts["data"] and ckpts["data"][0]["fine_tuned_model_checkpoint"].endswith(
        f"ckpt-step-{ckpts['data'][0]['step_number']}"
    )

    report = client.get(f"/v1/fine_tuning/jobs/{created['id']}/safety_report", headers=auth(keys["alice"])).json()
    assert report["passed"] is True and {"before", "after", "method"} <= set(report)

    r = client.get(f"/v1/fine_tuning/jobs/{created['id']}/adapter", headers=auth(keys["alice"]))
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    _check_bundle_and_load(r.content, micro, tmp_path)


def _check_bundle_and_load(blob: bytes, micro: dict, tmp_path) -> None:
    import hashlib

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    zf = zipfile.ZipFile(io.BytesIO(blob))
    manifest = json.loads(zf.read("manifest.json"))
    assert {"adapter_config.json", "adapter_model.safetensors"} <= set(manifest["files"])
    for name, meta in manifest["files"].items():
        assert hashlib.sha256(zf.read(name)).hexdigest() == meta["sha256"]
    assert manifest["base_model"] == "micro" and manifest["job_spec"]["seed"] == 7
    # the adapter names its base model by id; no server path leaks into anything the tenant downloads
    assert json.loads(zf.read("adapter_config.json"))["base_model_name_or_path"] == "micro"
    for name in zf.namelist():
        text = zf.read(name).decode("utf-8", "replace") if not name.endswith(".safetensors") else ""
        assert micro["base"] not in text and micro["alignment"] not in text and "/tmp/" not in text, name
    zf.extractall(tmp_path / "adapter")
    base = AutoModelForCausalLM.from_pretrained(micro["base"]).eval()
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        before = base(ids).logits
        tuned = PeftModel.from_pretrained(base, str(tmp_path / "adapter")).eval()
        after = tuned(ids).logits
    assert not torch.allclose(before, after, atol=1e-4)


@pytest.mark.backends("postgres")  # test_shutdown resumes on SQLite
def test_worker_killed_mid_training_resumes_from_checkpoint(client, keys, stack, worker, tmp_path):
    stop_worker(worker)  # this test runs its own workers
    fid = upload(client, keys["alice"], to_jsonl(chat_rows(64, seed=3))).json()["id"]
    jid = _create(
        client,
        keys["alice"],
        fid,
        method={
            "type": "supervised",
            "supervised": {"hyperparameters": {"n_epochs": 40, "batch_size": 2, "learning_rate_multiplier": 5}},
        },
    )["id"]
    first = start_worker(stack, tmp_path / "w1.log")
    first_checkpoint(client, keys["alice"], jid)
    stop_worker(first, kill=True)  # SIGKILL: no cleanup, the lease just stops being renewed
    done, messages = finish_on_a_new_worker(client, keys["alice"], stack, jid, tmp_path / "w2.log")
    assert done["status"] == "succeeded", done
    assert done["attempt"] == 2
    assert any("stopped heartbeating" in m for m in messages)
    assert any("resumed from step" in m for m in messages)
