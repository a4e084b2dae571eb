"""Jobs API without a worker: create, dry run, idempotency, pagination, cancel, events, isolation, errors."""

from __future__ import annotations

import pytest

from tests.factories import chat_rows, to_jsonl
from tests.fixtures.service import auth, upload


@pytest.fixture(scope="module")
def train_file(client, keys) -> str:
    return upload(client, keys["alice"], to_jsonl(chat_rows(16))).json()["id"]


def _create(client, key, **body):
    return client.post("/v1/fine_tuning/jobs", headers=auth(key), json={"model": "micro", **body})


def test_create_returns_an_openai_job_object(client, keys, train_file):
    r = _create(
        client,
        keys["alice"],
        training_file=train_file,
        suffix="demo",
        metadata={"team": "a"},
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}},
    )
    assert r.status_code == 200, r.text
    job = r.json()
    required = {
        "id",
        "object",
        "created_at",
        "error",
        "finished_at",
        "fine_tuned_model",
        "hyperparameters",
        "model",
        "organization_id",
        "result_files",
        "status",
        "trained_tokens",
        "training_file",
        "validation_file",
        "seed",
    }
    assert required <= set(job)
    assert job["object"] == "fine_tuning.job" and job["status"] == "queued" and job["id"].startswith("ftjob-")
    assert job["hyperparameters"]["n_epochs"] == 2 and isinstance(job["hyperparameters"]["batch_size"], int)
    assert job["queue_position"] >= 1 and job["stage"] is None and job["metadata"] == {"team": "a"}
    assert job["lora"]["r"] == 4 and job["lora"]["continues_alignment"]  # continues the alignment adapter
    assert "init_adapter" not in job["lora"]  # no server paths leak to tenants
    events = client.get(f"/v1/fine_tuning/jobs/{job['id']}/events", headers=auth(keys["alice"])).json()
    assert [e["message"] for e in events["data"]][-1].startswith("Created fine-tuning job")


def test_dry_run_resolves_hyperparameters_without_queuing(client, keys, train_file):
    before = len(client.get("/v1/fine_tuning/jobs?limit=100", headers=auth(keys["alice"])).json()["data"])
    r = _create(client, keys["alice"], training_file=train_file, dry_run=True)
    plan = r.json()
    assert plan["object"] == "fine_tuning.job.dry_run" and plan["n_examples"] == 16
    hp = plan["hyperparameters"]
    assert plan["total_steps"] == -(-16 // hp["batch_size"]) * hp["n_epochs"]
    assert plan["estimated_seconds"] > 0 and plan["trained_tokens"] > 0
    # the ETA covers realignment too, and the seed is the one a real job with this body would use
    assert plan["estimated_seconds"] == pytest.approx(
        plan["estimated_train_seconds"] + plan["estimated_realign_seconds"], abs=0.11
    )
    assert plan["estimated_realign_seconds"] > 0 and "init_adapter" not in plan["lora"]
    job = _create(client, keys["alice"], training_file=train_file).json()
    assert job["seed"] == plan["seed"]
    client.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel", headers=auth(keys["alice"]))
    before += 1
    after = len(client.get("/v1/fine_tuning/jobs?limit=100", headers=auth(keys["alice"])).json()["data"])
    assert after == before


def test_idempotency_key_returns_the_same_job(client, keys, train_file):
    h = {**auth(keys["alice"]), "Idempotency-Key": "k-123"}
    body = {"model": "micro", "training_file": train_file}
    a = client.post("/v1/fine_tuning/jobs", headers=h, json=body).json()
    b = client.post("/v1/fine_tuning/jobs", headers=h, json=body).json()
    assert a["id"] == b["id"]
    r = client.post("/v1/fine_tuning/jobs", headers=h, json={**body, "suffix": "other"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "idempotency_conflict"


def test_cursor_pagination_and_metadata_filter(client, keys, train_file):
    ids = [
        _create(client, keys["alice"], training_file=train_file, metadata={"batch": "p"}).json()["id"] for _ in range(3)
    ]
    first = client.get("/v1/fine_tuning/jobs?limit=2", headers=auth(keys["alice"])).json()
    assert first["object"] == "list" and len(first["data"]) == 2 and first["has_more"]
    assert [j["id"] for j in first["data"]] == ids[::-1][:2]  # newest first, even within one second
    second = client.get(
        f"/v1/fine_tuning/jobs?limit=2&after={first['data'][-1]['id']}", headers=auth(keys["alice"])
    ).json()
    assert not {j["id"] for j in first["data"]} & {j["id"] for j in second["data"]}
    tagged = client.get("/v1/fine_tuning/jobs?limit=100&metadata[batch]=p", headers=auth(keys["alice"])).json()
    assert {j["id"] for j in tagged["data"]} == set(ids)


def test_cancel_queued_job_and_cancel_twice(client, keys, train_file):
    jid = _create(client, keys["alice"], training_file=train_file).json()["id"]
    r = client.post(f"/v1/fine_tuning/jobs/{jid}/cancel", headers=auth(keys["alice"]))
    assert r.json()["status"] == "cancelled" and r.json()["finished_at"]
    again = client.post(f"/v1/fine_tuning/jobs/{jid}/cancel", headers=auth(keys["alice"]))
    assert again.status_code == 409 and again.json()["error"]["code"] == "job_not_cancellable"


def test_jobs_are_tenant_scoped(client, keys, train_file):
    jid = _create(client, keys["alice"], training_file=train_file).json()["id"]
    for path in ("", "/events", "/checkpoints", "/adapter", "/safety_report"):
        r = client.get(f"/v1/fine_tuning/jobs/{jid}{path}", headers=auth(keys["bob"]))
        assert r.status_code == 404, path
    assert client.post(f"/v1/fine_tuning/jobs/{jid}/cancel", headers=auth(keys["bob"])).status_code == 404
    r = _create(client, keys["bob"], training_file=train_file)  # alice's file
    assert r.status_code == 404 and r.json()["error"]["param"] == "training_file"


@pytest.mark.parametrize(
    "body, param",
    [
        (
            {"method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 0}}}},
            "method.supervised.hyperparameters.n_epochs",
        ),
        ({"lora": {"r": 16}}, "lora.r"),
        ({"safety": {"realign": "magic"}}, "safety.realign"),
        ({"model": "nope"}, "model"),
        ({"suffix": "x" * 65}, "suffix"),
    ],
)
def test_bad_requests_are_400_with_param(client, keys, train_file, body, param):
    r = client.post(
        "/v1/fine_tuning/jobs",
        headers=auth(keys["alice"]),
        json={"model": "micro", "training_file": train_file, **body},
    )
    assert r.status_code in (400, 404), r.text
    assert r.json()["error"]["param"] == param


def test_adapter_is_not_ready_before_success(client, keys, train_file):
    jid = _create(client, keys["alice"], training_file=train_file).json()["id"]
    r = client.get(f"/v1/fine_tuning/jobs/{jid}/adapter", headers=auth(keys["alice"]))
    assert r.status_code == 409 and r.json()["error"]["code"] == "adapter_not_ready"
    r = client.get(f"/v1/fine_tuning/jobs/{jid}/adapter?variant=raw", headers=auth(keys["alice"]))
    assert r.status_code == 403  # raw adapter is admin-only
