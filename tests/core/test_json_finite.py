"""Every float that reaches a JSON column is finite or null: NaN/Infinity in an event's data, a safety report, a
mask's stats or a job's hyperparameters are stored as null on both backends (PostgreSQL's JSONB rejects the
literal NaN that json.dumps writes: the whole unit of work, and with it the job, failed)."""

from __future__ import annotations

import math

from tests.factories import chat_rows, to_jsonl
from tests.fixtures.service import auth, upload

NAN, INF = float("nan"), float("inf")


def _job(client, key):
    fid = upload(client, key, to_jsonl(chat_rows(16))).json()["id"]
    r = client.post("/v1/fine_tuning/jobs", headers=auth(key), json={"model": "micro", "training_file": fid})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def test_nan_and_infinity_in_every_json_column_read_back_as_null(client, keys, stack):
    from core.db import session_scope
    from core.events import service as events
    from core.ids import new_id
    from core.tables import Job, JobEvent, SafetyMask, SafetyReport

    jid = _job(client, keys["alice"])
    with session_scope() as s:
        ev = events.add(s, jid, "Step 1/9", type="metrics", data={"loss": NAN, "lr": 1e-4, "grad": [INF, 1.0]})
        job = s.get(Job, jid)
        job.hyperparameters = {**job.hyperparameters, "observed_tokens_per_s": NAN, "train_wall_s": -INF}
        s.add(SafetyReport(job_id=jid, passed=False, data={"after": {"hs": NAN, "fa": 0.9}, "trials": [{"x": INF}]}))
        mask = SafetyMask(
            id=new_id("mask-"), base_model_id="micro", version=99, method="nlsr", config={"p": NAN},
            config_hash="c", corpus_hash="h", stats={"mean": INF, "count": 3},
        )  # fmt: skip
        s.add(mask)
        ev_id, mask_id = ev.id, mask.id
    with session_scope() as s:  # a fresh session: what the database holds
        data = s.query(JobEvent).filter_by(id=ev_id).one().data
        assert data == {"loss": None, "lr": 1e-4, "grad": [None, 1.0]}
        hp = s.get(Job, jid).hyperparameters
        assert hp["observed_tokens_per_s"] is None and hp["train_wall_s"] is None and hp["n_epochs"] is not None
        report = s.query(SafetyReport).filter_by(job_id=jid).one().data
        assert report == {"after": {"hs": None, "fa": 0.9}, "trials": [{"x": None}]}
        m = s.get(SafetyMask, mask_id)
        assert m.stats == {"mean": None, "count": 3} and m.config == {"p": None}
    page = client.get(f"/v1/fine_tuning/jobs/{jid}/events", headers=auth(keys["alice"])).json()["data"]
    assert next(e for e in page if e["id"] == ev_id)["data"]["loss"] is None


def test_finite_json_leaves_finite_values_alone():
    from core.db import dumps_json, finite_json

    value = {"a": 1.5, "b": [1, "x", None, True], "c": {"d": -0.0}}
    assert finite_json(value) == value
    assert dumps_json({"x": NAN, "y": [INF, -INF], "z": 2.0}) == '{"x": null, "y": [null, null], "z": 2.0}'
    assert not math.isnan(finite_json([NAN])[0] or 0.0)
