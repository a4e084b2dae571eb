"""A worker that is told to stop mid-training hands its job back instead of failing it: warm shutdown
(SIGTERM, on the embedded backend) and cold shutdown (SIGQUIT, on PostgreSQL + Redis) both requeue, and the
next worker resumes from the last checkpoint."""

from __future__ import annotations

import os
import signal

from tests.factories import chat_rows, to_jsonl
from tests.fixtures.service import auth, upload
from tests.workers.helpers import all_events, job, start_worker, stop_worker, wait_for, wait_terminal

HP = {"n_epochs": 12, "batch_size": 2, "learning_rate_multiplier": 5}


def test_worker_shutdown_requeues_and_the_next_worker_resumes(client, keys, stack, tmp_path):
    sig = signal.SIGTERM if stack["backend"] == "sqlite" else signal.SIGQUIT
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
        wait_for(
            lambda: client.get(f"/v1/fine_tuning/jobs/{jid}/checkpoints", headers=auth(keys["alice"])).json()["data"],
            timeout=300,
            what="a first checkpoint",
        )
        os.killpg(first.pid, sig)
        first.wait(timeout=60)
    finally:
        stop_worker(first, kill=True)
    requeued = job(client, keys["alice"], jid)
    assert requeued["status"] == "queued" and requeued["error"] is None, requeued
    assert any("shutting down" in e["message"] for e in all_events(client, keys["alice"], jid))
    second = start_worker(stack, tmp_path / "w2.log")
    try:
        done = wait_terminal(client, keys["alice"], jid, timeout=400)
    finally:
        stop_worker(second)
    assert done["status"] == "succeeded", done
    assert any("resumed from step" in e["message"] for e in all_events(client, keys["alice"], jid))
