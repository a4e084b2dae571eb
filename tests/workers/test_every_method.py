"""Every realignment method the API accepts runs to a terminal state (issue 19 item 2): the API's names are the
worker's, so no accepted job trains in full and then fails with ``internal_error``. Runs on the micro model (real
peft training, masks, evaluation and every method, in seconds per job); the testbed variant of this test waits on
the testbed cache."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from tests.fixtures.service import auth
from tests.workers.helpers import cancel_leftover_jobs, job


@pytest.fixture(scope="module")
def tenant(stack, keys, client) -> dict:
    if stack["backend"] != "postgres":
        pytest.skip("the jobs run once, on the production backend")
    from tests.factories import chat_rows

    t = client.post("/v1/admin/tenants", headers=auth(keys["admin"]), json={"name": "every-method"}).json()
    policy = {"allow_unrealigned": True}  # "none" is accepted only with the operator's grant
    client.post(f"/v1/admin/tenants/{t['id']}/safety_policy", headers=auth(keys["admin"]), json=policy)
    rows = chat_rows(24)
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    files = {"file": ("train.jsonl", io.BytesIO(data))}
    up = client.post("/v1/files", headers=auth(t["api_key"]), files=files, data={"purpose": "fine-tune"})
    assert up.status_code == 200, up.text
    return {"key": t["api_key"], "file": up.json()["id"]}


def _accepted_names(client) -> list[str]:
    """What the API's published schema says ``safety.realign`` accepts."""
    schema = client.get("/openapi.json").json()["components"]["schemas"]["SafetyOptions"]
    return list(schema["properties"]["realign"]["enum"])


def test_every_accepted_method_reaches_a_terminal_state(client, tenant):
    from workers.pipeline import run_job

    cancel_leftover_jobs()
    key, hp = tenant["key"], {"n_epochs": 1, "batch_size": 4, "learning_rate_multiplier": 10.0}
    outcomes = {}
    for name in _accepted_names(client):
        body = {
            "model": "micro",
            "training_file": tenant["file"],
            "seed": 0,
            "method": {"type": "supervised", "supervised": {"hyperparameters": hp}},
            "safety": {"realign": name},
        }
        r = client.post("/v1/fine_tuning/jobs", headers=auth(key), json=body)
        assert r.status_code == 200, (name, r.text)
        run_job(r.json()["id"])
        done = job(client, key, r.json()["id"])
        outcomes[name] = (done["status"], (done.get("error") or {}).get("code"))
        report = client.get(f"/v1/fine_tuning/jobs/{done['id']}/safety_report", headers=auth(key)).json()
        assert report.get("method") == name, (name, report)
        assert report.get("released_unrealigned") is (name == "none"), (name, report)
        if done["status"] == "succeeded":  # the adapter's manifest says whether it was realigned
            blob = client.get(f"/v1/fine_tuning/jobs/{done['id']}/adapter", headers=auth(key)).content
            manifest = json.loads(zipfile.ZipFile(io.BytesIO(blob)).read("manifest.json"))
            assert manifest["released_unrealigned"] is (name == "none"), (name, manifest)
    assert all(status in ("succeeded", "failed") and code != "internal_error" for status, code in outcomes.values()), (
        outcomes
    )
