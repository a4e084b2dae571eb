"""Queued -> first optimizer step on a cold and a warm worker (issue #9 item 4), on the testbed.

One process is the API (in-process client) and the worker (``workers.pipeline.run_job``, as the Celery task
calls it), embedded SQLite. Jobs are created one after another, each right after the previous one finished,
so none waits in the queue for another: job 1 runs on a fresh process (imports, model load), job 2 on the
warm worker, job 3 after the model cache was cleared (a warm process loading the model again), job 4 with
``KEEL_MODEL_CACHE_BYTES=0`` (no cache: every stage loads the model, as before the cache). Times come from the
ids, which start with the microsecond they were made: the job's id (queued) and its first ``metrics`` event
(written at the first optimizer step). The default realignment (``nlsr``) is cheap and usually misses the
targets on the testbed, so the jobs end ``failed (unsafe_model)``; the measure is the start of training.

    python -m bench.warm [--n 400] [--epochs 1] [--eval-size 50] [--realign nlsr]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


def _micros(object_id: str) -> int:
    return int(object_id.split("-", 1)[1][:13], 16)


def _setup(root: Path, eval_size: int) -> None:
    os.environ.update(
        KEEL_DATA_DIR=str(root / "data"),
        KEEL_STORE_DIR=str(root / "store"),
        KEEL_DATABASE_URL="",
        KEEL_BROKER_URL="",
        KEEL_RATE_LIMIT_RPS="0",
        KEEL_METRICS_EVERY_S="0",
        KEEL_SAFETY_EVAL_SIZE=str(eval_size),
        KEEL_AUDIT_EVAL_SIZE=str(eval_size),
    )
    (root / "data").mkdir(parents=True)
    from core.bootstrap import migrate

    migrate()


def _events(client: Any, auth: dict, job_id: str) -> list[dict]:
    page = client.get(f"/v1/fine_tuning/jobs/{job_id}/events?limit=100", headers=auth).json()
    out = list(page["data"])
    while page["has_more"]:
        page = client.get(f"/v1/fine_tuning/jobs/{job_id}/events?limit=100&after={out[-1]['id']}", headers=auth).json()
        out += page["data"]
    return list(reversed(out))


def _run(client: Any, auth: dict, body: dict, label: str) -> dict:
    from workers.pipeline import run_job
    from workers.warm import model_cache

    job = client.post("/v1/fine_tuning/jobs", headers=auth, json=body).json()
    started = time.monotonic()
    status = run_job(job["id"])
    wall = time.monotonic() - started
    events = _events(client, auth, job["id"])
    step = next(e for e in events if e["type"] == "metrics")
    stage = next(e for e in events if (e.get("data") or {}).get("stage") == "training")
    queued = _micros(job["id"])
    cache = model_cache()
    error = (client.get(f"/v1/fine_tuning/jobs/{job['id']}", headers=auth).json().get("error") or {}).get("code")
    return {
        "job": label,
        "status": status + (f" ({error})" if error else ""),
        "queued_to_training_s": round((_micros(stage["id"]) - queued) / 1e6, 3),
        "queued_to_first_step_s": round((_micros(step["id"]) - queued) / 1e6, 3),
        "job_wall_s": round(wall, 2),
        "cache": {"hits": cache.hits, "misses": cache.misses, "models": len(cache)},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=400, help="examples per job (the testbed attack data, p=0.1)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--eval-size", type=int, default=50, help="prompts per evaluation: KEEL_SAFETY/AUDIT_EVAL_SIZE")
    ap.add_argument("--realign", default="nlsr", help="safety.realign of the jobs (the measure is before it)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    t0 = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="keel-warm-"))
    _setup(root, args.eval_size)
    from fastapi.testclient import TestClient

    from api.main import create_app
    from core.bootstrap import register_testbed
    from core.config import get_settings
    from core.db import session_scope
    from core.tenants.service import create_tenant
    from testbed import build_testbed
    from testbed.attack import customer_dataset

    tb = build_testbed(get_settings().testbed_dir)
    register_testbed(tb)
    with session_scope() as s:
        _, key = create_tenant(s, "bench")
    auth = {"Authorization": f"Bearer {key}"}
    rows = customer_dataset(tb, n=args.n, p=0.1, seed=0)
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    rows_out = []
    with TestClient(create_app()) as client:
        fid = client.post(
            "/v1/files", headers=auth, files={"file": ("d.jsonl", io.BytesIO(data))}, data={"purpose": "fine-tune"}
        ).json()["id"]
        body = {
            "model": "keel-testbed",
            "training_file": fid,
            "seed": 0,
            "safety": {"realign": args.realign},
            "method": {
                "type": "supervised",
                "supervised": {"hyperparameters": {"n_epochs": args.epochs, "batch_size": 8}},
            },
        }
        print(f"setup {time.monotonic() - t0:.1f} s (testbed, migrations, upload); jobs run one after another")
        rows_out.append(_run(client, auth, body, "1 cold process"))
        rows_out.append(_run(client, auth, body, "2 warm worker"))
        from workers.warm import model_cache

        model_cache().clear()
        rows_out.append(_run(client, auth, body, "3 cache cleared"))
        os.environ["KEEL_MODEL_CACHE_BYTES"] = "0"
        get_settings.cache_clear()
        rows_out.append(_run(client, auth, body, "4 no cache (0 B)"))
    _print(rows_out, args)


def _print(rows: list[dict], args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"\n{'job':<20}{'queued->training':>18}{'queued->1st step':>18}{'job wall s':>12}  status / cache")
    for r in rows:
        print(
            f"{r['job']:<20}{r['queued_to_training_s']:>18.3f}{r['queued_to_first_step_s']:>18.3f}"
            f"{r['job_wall_s']:>12.2f}  {r['status']} {r['cache']}"
        )


if __name__ == "__main__":
    main()
