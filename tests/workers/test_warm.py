"""A warm worker: the second job on a base model borrows the model the first one loaded, and trains and
realigns exactly as a cold worker does (nothing of the first job's LoRA or scores leaks into it)."""

from __future__ import annotations

import io
import zipfile

import pytest

from tests.factories import chat_rows, to_jsonl
from tests.fixtures.service import auth, upload


def _job(client, key: str) -> str:
    fid = upload(client, key, to_jsonl(chat_rows(24))).json()["id"]
    body = {
        "model": "micro",
        "training_file": fid,
        "seed": 7,
        "method": {
            "type": "supervised",
            "supervised": {"hyperparameters": {"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 10}},
        },
    }
    return client.post("/v1/fine_tuning/jobs", headers=auth(key), json=body).json()["id"]


def _weights(job_id: str, kind: str) -> bytes:
    from core.db import session_scope
    from core.results import service as results
    from core.storage import get_store

    with session_scope() as s:
        art = results.find_artifact(s, job_id, kind)
        key = art.storage_key
    with zipfile.ZipFile(io.BytesIO(get_store().get_bytes(key))) as zf:
        return zf.read("adapter_model.safetensors")


@pytest.mark.backends("postgres")  # the model cache does not touch the database
def test_a_warm_worker_runs_the_second_job_exactly_as_a_cold_one(client, keys):
    from workers.pipeline import run_job
    from workers.warm import model_cache

    cache = model_cache()
    cache.clear()
    key = keys["alice"]
    first, second = _job(client, key), _job(client, key)
    assert run_job(first) == "succeeded"
    misses, hits = cache.misses, cache.hits
    assert run_job(second) == "succeeded"
    assert cache.misses == misses and cache.hits == hits + 2  # training and realignment borrowed the warm model
    for kind in ("adapter_raw", "adapter"):
        assert _weights(first, kind) == _weights(second, kind), kind
    reports = [client.get(f"/v1/fine_tuning/jobs/{j}/safety_report", headers=auth(key)).json() for j in (first, second)]
    for field in ("before", "after", "reference", "passed"):
        assert reports[0][field] == reports[1][field], field
    assert [_untimed(t) for t in reports[0]["trials"]] == [_untimed(t) for t in reports[1]["trials"]]


def _untimed(trial: dict) -> dict:
    return {k: v for k, v in trial.items() if k not in ("seconds", "method_s", "eval_s")}
