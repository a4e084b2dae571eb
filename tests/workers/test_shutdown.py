"""A worker that is told to stop mid-training hands its job back instead of failing it: warm shutdown
(SIGTERM, on the embedded backend) and cold shutdown (SIGQUIT, on PostgreSQL + Redis) both requeue, and the
next worker resumes from the last checkpoint."""

from __future__ import annotations

import os
import signal

from tests.factories import chat_rows, to_jsonl
from tests.fixtures.service import auth, upload
from tests.workers.helpers import (
    all_events,
    cancel_leftover_jobs,
    finish_on_a_new_worker,
    first_checkpoint,
    job,
    start_worker,
    stop_worker,
)

HP = {"n_epochs": 12, "batch_size": 2, "learning_rate_multiplier": 5}


def test_worker_shutdown_requeues_and_the_next_worker_resumes(client, keys, stack, tmp_path):
    sig = signal.SIGTERM if stack["backend"] == "sqlite" else signal.SIGQUIT
    cancel_leftover_jobs()
    fid = upload(client, keys["alice"], to_jsonl(chat_rows(48, seed=5))).json()["id"]
    body = {
        "model": "micro",
        "training_file": fid,
        "seed": 3,
        "method": {"type": "supervised", "supervised": {"hyperparameters": HP}},
    }
    jid = client.post("/v1/fine_tuning/jobs", headers=auth(keys["alice"]), json=body).json()["id"]
    first = start_worker(stack, tmp_path / "w1.log")
    try:
        first_checkpoint(client, keys["alice"], jid)
        os.killpg(first.pid, sig)
        first.wait(timeout=60)
    finally:
        stop_worker(first, kill=True)
    requeued = job(client, keys["alice"], jid)
    assert requeued["status"] == "queued" and requeued["error"] is None, requeued
    assert any("shutting down" in e["message"] for e in all_events(client, keys["alice"], jid))
    done, messages = finish_on_a_new_worker(client, keys["alice"], stack, jid, tmp_path / "w2.log")
    assert done["status"] == "succeeded", done
    assert any("resumed from step" in m for m in messages)
