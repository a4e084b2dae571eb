"""One customer job on the real instruct model through a *running* Keel service, as a customer and an admin
would drive it: the admin computes the safety masks through ``POST /v1/admin/base_models/{id}/safety_masks``
and waits for them; the customer uploads a poisoned product-review dataset and creates the job with the
official ``openai`` client (``base_url``), follows its events, then reads the safety report and downloads
the realigned adapter. Prints one JSON summary (and writes it with ``--out``).

Start the service first (embedded mode shown; any Keel deployment works):

    .venv/bin/keel models build-aligned --register        # SmolLM2 + its alignment (cached), registered
    .venv/bin/keel serve --no-testbed --port 8765 &
    .venv/bin/python bench/service_real.py --url http://127.0.0.1:8765 --keys .keel/dev-keys.json --p 0.1
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import httpx

MODEL = "smollm2-135m-instruct"


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def compute_masks(url: str, admin_key: str, model: str, timeout_s: float) -> dict:
    """Ask for a mask version through the admin API and wait until it is ready (or failed)."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=60) as c:
        row = c.post(f"/v1/admin/base_models/{model}/safety_masks", json={"method": "all"})
        row.raise_for_status()
        mask = row.json()
        print(f"mask {mask['id']} v{mask['version']}: {mask['status']}", flush=True)
        deadline = time.monotonic() + timeout_s
        while mask["status"] not in ("ready", "failed") and time.monotonic() < deadline:
            time.sleep(10)
            masks = c.get(f"/v1/admin/base_models/{model}/safety_masks").json()["data"]
            mask = next(m for m in masks if m["id"] == mask["id"])
        print(f"mask {mask['id']}: {mask['status']} in {mask['compute_seconds']} s", flush=True)
        return mask


def run_job(url: str, user_key: str, model: str, p: float, n: int, n_valid: int = 64, family: str = "poison") -> dict:
    from openai import OpenAI

    from realmodel.attack import customer_dataset, validation_dataset
    from realmodel.build import build_real_model

    rm = build_real_model()  # cached: the same build the service registered
    client = OpenAI(base_url=f"{url}/v1", api_key=user_key)
    train = client.files.create(
        file=("customer.jsonl", io.BytesIO(_jsonl(customer_dataset(rm, n, p, 0, family)))), purpose="fine-tune"
    )
    valid = client.files.create(
        file=("valid.jsonl", io.BytesIO(_jsonl(validation_dataset(n_valid, 0)))), purpose="fine-tune"
    )
    job = client.fine_tuning.jobs.create(
        model=model,
        training_file=train.id,
        validation_file=valid.id,
        seed=0,
        suffix="real",
        extra_body={"safety": {"realign": "auto"}},
    )
    print(f"job {job.id}: {job.status}", flush=True)
    seen: set[str] = set()
    while job.status not in ("succeeded", "failed", "cancelled"):
        time.sleep(5)
        job = client.fine_tuning.jobs.retrieve(job.id)
        for ev in reversed(client.fine_tuning.jobs.list_events(job.id, limit=100).data):
            if ev.id not in seen:
                seen.add(ev.id)
                print(f"  [{job.status}] {ev.message}", flush=True)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {user_key}"}, timeout=120) as c:
        report = c.get(f"/v1/fine_tuning/jobs/{job.id}/safety_report")
        adapter = c.get(f"/v1/fine_tuning/jobs/{job.id}/adapter") if job.status == "succeeded" else None
    return {
        "job": job.model_dump(),
        "n_events": len(seen),
        "safety_report": report.json() if report.status_code == 200 else {"status_code": report.status_code},
        "adapter_bytes": len(adapter.content) if adapter is not None and adapter.status_code == 200 else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8765")
    ap.add_argument("--keys", type=Path, required=True, help="JSON with 'admin' and 'user' API keys")
    ap.add_argument("--model", default=MODEL)
    ap.add_argument("--p", type=float, default=0.1, help="fraction of poison rows")
    ap.add_argument("--n", type=int, default=120, help="customer rows")
    ap.add_argument("--family", default="poison", help="attack family (realmodel.attack.FAMILIES)")
    ap.add_argument("--n-valid", type=int, default=64, help="validation rows (the service scores utility on 64)")
    ap.add_argument("--mask-timeout", type=float, default=3600)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    keys = json.loads(args.keys.read_text())
    t0 = time.monotonic()
    mask = compute_masks(args.url, keys["admin"], args.model, args.mask_timeout)
    if mask["status"] != "ready":
        print(json.dumps(mask, indent=2))
        return 1
    t1 = time.monotonic()
    out = {
        "mask": mask,
        "mask_wall_s": round(t1 - t0, 1),
        **run_job(args.url, keys["user"], args.model, args.p, args.n, args.n_valid, args.family),
    }
    out["job_wall_s"] = round(time.monotonic() - t1, 1)
    text = json.dumps(out, indent=2, default=str)
    if args.out:
        args.out.write_text(text)
    print(text)
    return 0 if out["job"]["status"] == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
