"""The production path's failure modes, on PostgreSQL (issue 18):

- a job on the CUDA code path, whose trainer reads the loss only every 10 steps (so the step-1 metrics carry
  ``loss: NaN``), succeeds, and the metric reads back as null;
- an internal error shows the tenant a fixed message and a correlation id, never the exception's text or a
  server path; the worker log has both under the same id; events never name the worker's host or pid;
- a lost worker's job is retried with half the tokens per micro-batch, and a second loss fails it as
  ``out_of_memory`` (the evidence says so) or ``worker_lost`` (it does not).
"""

from __future__ import annotations

import logging
import os
import re
import socket
from pathlib import Path

import pytest

from tests.workers.helpers import all_events, job, queued_job

pytestmark = pytest.mark.backends("postgres")  # JSONB, which rejects NaN, is PostgreSQL's


@pytest.fixture
def cuda_path(monkeypatch):
    """The CUDA code path on CPU (``KEEL_EMULATE_CUDA_PATH``, the trainer's test-only setting). Its step-1 loss is
    not read (NaN): the metrics reach the database exactly as the trainer reports them on a GPU."""
    from core.config import get_settings
    from workers.progress import DbProgress

    monkeypatch.setenv("KEEL_EMULATE_CUDA_PATH", "1")
    get_settings.cache_clear()
    on_step = DbProgress.on_step

    def cuda_on_step(self, step, total, metrics):
        if step == 1:  # loss read every 10 steps on CUDA: not at step 1
            metrics = {**metrics, "loss": float("nan")}
        return on_step(self, step, total, metrics)

    monkeypatch.setattr(DbProgress, "on_step", cuda_on_step)
    yield
    monkeypatch.delenv("KEEL_EMULATE_CUDA_PATH")
    get_settings.cache_clear()


def test_a_job_on_the_cuda_path_succeeds_with_its_nan_step_one_loss_stored_as_null(client, keys, cuda_path):
    from workers.pipeline import run_job

    jid = queued_job(client, keys["alice"], n=16)
    assert run_job(jid) == "succeeded", job(client, keys["alice"], jid)["error"]
    done = job(client, keys["alice"], jid)
    assert done["status"] == "succeeded" and done["error"] is None
    metrics = [e["data"] for e in all_events(client, keys["alice"], jid) if e["type"] == "metrics"]
    first = next(m for m in metrics if m["step"] == 1)
    assert "loss" in first and first["loss"] is None
    assert all(m["loss"] is None or m["loss"] == m["loss"] for m in metrics)


def test_an_internal_error_shows_the_tenant_a_reference_not_the_exception(client, keys, stack, caplog):
    from core.config import get_settings
    from core.db import session_scope
    from core.tables import File, Job
    from workers.pipeline import run_job

    jid = queued_job(client, keys["alice"], n=16)
    with session_scope() as s:  # the stored training file is gone: loading it raises with the server's path
        key = s.get(File, s.get(Job, jid).training_file).storage_key
    blob = Path(get_settings().store_dir).resolve() / key
    blob.unlink()
    with caplog.at_level(logging.INFO):
        assert run_job(jid) == "failed"
    done = job(client, keys["alice"], jid)
    err = done["error"]
    assert err["code"] == "internal_error", err
    m = re.search(r"\(ref: (err_[0-9a-f]{8})\)$", err["message"])
    assert m, err["message"]
    ref = m.group(1)
    shown = err["message"] + "".join(e["message"] + str(e["data"]) for e in all_events(client, keys["alice"], jid))
    for secret in (str(blob), key, "FileNotFoundError", "Traceback", "Errno", get_settings().store_dir.as_posix()):
        assert secret not in shown, secret
    assert socket.gethostname() not in shown and f":{os.getpid()}:" not in shown
    logged = [r for r in caplog.records if ref in r.getMessage()]
    assert any(r.exc_info and "FileNotFoundError" in r.exc_info[0].__name__ for r in logged), "the log has the cause"


def _claim(jid: str, owner: str) -> None:
    from core.db import session_scope
    from core.jobs import lifecycle

    with session_scope() as s:
        assert lifecycle.claim(s, jid, owner)
        lifecycle.started(s, jid, owner)


def _expire(jid: str) -> None:
    from core.db import session_scope
    from core.ids import now
    from core.tables import Job

    with session_scope() as s:
        s.get(Job, jid).lease_expires_at = now() - 1


def test_a_lost_worker_retries_with_half_the_budget_then_fails_as_out_of_memory(client, keys):
    from core.db import session_scope
    from core.jobs import lifecycle
    from workers.context import load_context
    from workers.lease import reap
    from workers.stages.train import train_specs

    jid = queued_job(client, keys["alice"], n=16)
    _claim(jid, "hostA:101:1")
    with session_scope() as s:  # the heartbeat's sample: the worker holds most of what it may use
        lifecycle.renew(s, jid, "hostA:101:1", {"rss_bytes": 7 << 30, "used_bytes": 15 << 30, "limit_bytes": 16 << 30})
    _expire(jid)
    assert jid in reap()
    events = all_events(client, keys["alice"], jid)
    retry = next(e for e in events if "micro_batch_tokens" in (e["data"] or {}))
    assert retry["data"] == {"lost_workers": 1, "likely_out_of_memory": True, "micro_batch_tokens": 2048}
    assert job(client, keys["alice"], jid)["status"] == "queued"

    _claim(jid, "hostB:202:1")
    assert train_specs(load_context(jid, "hostB:202:1"))[0].micro_batch_tokens == 2048
    with session_scope() as s:  # keel serve saw this worker die of SIGKILL
        assert lifecycle.worker_killed(s, "hostB:202:", "SIGKILL") == [jid]
    reap()
    done = job(client, keys["alice"], jid)
    assert done["status"] == "failed" and done["error"]["code"] == "out_of_memory", done
    assert "shorter rows" in done["error"]["message"] and "(ref: err_" in done["error"]["message"]
    shown = done["error"]["message"] + "".join(e["message"] for e in all_events(client, keys["alice"], jid))
    assert "hostA" not in shown and "hostB" not in shown


def test_two_lost_workers_without_memory_evidence_fail_as_worker_lost(client, keys):
    from workers.lease import reap

    jid = queued_job(client, keys["alice"], n=16)
    for owner in ("hostC:1:1", "hostC:2:1"):
        _claim(jid, owner)
        _expire(jid)
        reap()
    done = job(client, keys["alice"], jid)
    assert done["status"] == "failed" and done["error"]["code"] == "worker_lost", done
    assert done["attempt"] == 2 and "more memory" in done["error"]["message"]
