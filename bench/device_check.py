"""The GPU device check (issue 18), one command: ``bench/device_check.sh`` (which runs this module).

1. Training throughput, Keel vs ``transformers.Trainer`` + peft (``bench.throughput``: same rows, steps and
   LoRA; bf16 autocast on CUDA), with Keel's batches packed and padded; tokens/s, wall s, peak CUDA MiB.
2. One fine-tuning job through ``keel serve`` on a private PostgreSQL + Redis started here
   (``bench/device_services.py``): upload, create, wait; its status, train and realignment stage seconds
   (what the worker recorded on the job), and the GPU's peak memory in use while it ran (nvidia-smi).

Writes one JSON (``--out``). On the GPU: SmolLM2-135M-Instruct (``keel models import-gguf`` and
``build-aligned``, both cached by content). ``--dry-run``: the same steps on CPU with tiny sizes and the
offline testbed as the model, so the path is tested where no GPU is.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.device_services import free_port, services
from core.db import finite_json

REPO = Path(__file__).resolve().parents[1]
SIZES = {  # throughput steps, batch, max len; the job's rows, epochs and longest row (characters)
    "gpu": {"steps": 40, "batch": 8, "max_len": 512, "rows": 256, "epochs": 1, "max_chars": 6000},
    "dry": {"steps": 2, "batch": 2, "max_len": 64, "rows": 24, "epochs": 1, "max_chars": 400},
}


def _cli(args: list[str], env: dict[str, str], timeout: float) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    if out.returncode != 0:
        raise SystemExit(f"device_check: keel {' '.join(args)} failed:\n{out.stdout[-2000:]}{out.stderr[-4000:]}")
    return out.stdout


def prepare_model(dry: bool, env: dict[str, str]) -> tuple[str, str]:
    """Register the job's base model in the database of ``env``: (model id, local model dir for the benches)."""
    if dry:
        _cli(["testbed", "build", "--register"], env, 1800)  # cached by seed under ~/.cache/keel/testbed
        from testbed import build_testbed

        return "keel-testbed", str(build_testbed().base)
    path = _cli(["models", "import-gguf", "--register"], env, 600).splitlines()[0].strip()
    _cli(["models", "build-aligned", "--register"], env, 1800)
    return "smollm2-135m-instruct", path


def throughput(model: str, dry: bool) -> dict[str, Any]:
    from bench import throughput as tp

    z = SIZES["dry" if dry else "gpu"]
    base = ["--model", model, "--steps", str(z["steps"]), "--batch-size", str(z["batch"])]
    base += ["--max-len", str(z["max_len"]), "--warmup-steps", "0" if dry else "2"]
    return {layout: tp.main([*base, "--layout", layout]) for layout in ("packed", "padded")}


class GpuPeak(threading.Thread):
    """Peak GPU memory in use (MiB, nvidia-smi every 0.5 s) while the job runs; None without nvidia-smi."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak: float | None = None
        self._stop_event = threading.Event()

    def run(self) -> None:
        exe = shutil.which("nvidia-smi")
        while exe and not self._stop_event.wait(0.5):
            q = [exe, "--query-gpu=memory.used", "--format=csv,noheader,nounits"]
            try:
                used = float(subprocess.run(q, capture_output=True, text=True, timeout=5).stdout.split()[0])
            except (subprocess.SubprocessError, ValueError, IndexError):
                continue
            self.peak = max(self.peak or 0.0, used)

    def stop(self) -> float | None:
        self._stop_event.set()
        return self.peak


def _serve(env: dict[str, str], port: int, log: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    cmd = [sys.executable, "-m", "cli", "serve", "--no-testbed", "--port", str(port)]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    deadline, keys = time.monotonic() + 180, {}
    while time.monotonic() < deadline and proc.poll() is None:
        keys = dict(re.findall(r"^(Admin|Tenant) key:\s+(\S+)", log.read_text(errors="replace"), re.M))
        if len(keys) == 2 and _healthy(port):
            return proc, keys
        time.sleep(0.5)
    raise SystemExit(f"device_check: keel serve did not come up:\n{log.read_text(errors='replace')[-3000:]}")


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _rows(n: int, max_chars: int) -> bytes:
    """``n`` chat rows of the throughput bench's mix, each within ``max_chars`` (the model's context)."""
    from bench.throughput import chat_rows

    lines = [json.dumps({"messages": m}) for m in chat_rows(1, 8 * n)]
    return "".join(f"{line}\n" for line in [x for x in lines if len(x) <= max_chars][:n]).encode()


def run_job(env: dict[str, str], model: str, dry: bool, root: Path) -> dict[str, Any]:
    z = SIZES["dry" if dry else "gpu"]
    port = free_port()
    proc, keys = _serve(env, port, root / "serve.log")
    peak = GpuPeak()
    try:
        c = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {keys['Tenant']}"})
        files = {"file": ("train.jsonl", _rows(z["rows"], z["max_chars"]))}
        r = _ok(c.post("/v1/files", files=files, data={"purpose": "fine-tune", "model": model}, timeout=120))
        hp = {"n_epochs": z["epochs"], "batch_size": z["batch"]}
        body = {"model": model, "training_file": r.json()["id"]}
        body["method"] = {"type": "supervised", "supervised": {"hyperparameters": hp}}
        r = _ok(c.post("/v1/fine_tuning/jobs", json=body, timeout=60))
        jid, started = r.json()["id"], time.monotonic()
        peak.start()
        job = _wait(c, jid, 1500)
        out = {"job_id": jid, "model": model, "status": job["status"], "error": job["error"]}
        out["wall_s"], out["peak_gpu_used_mib"] = round(time.monotonic() - started, 1), peak.stop()
        return {**out, "trained_tokens": job["trained_tokens"], **_recorded(env, jid)}
    finally:
        peak.stop()
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _ok(r: httpx.Response) -> httpx.Response:
    if r.status_code != 200:
        raise SystemExit(f"device_check: {r.request.method} {r.request.url.path} -> {r.status_code}: {r.text[:2000]}")
    return r


def _wait(c: httpx.Client, jid: str, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job: dict[str, Any] = c.get(f"/v1/fine_tuning/jobs/{jid}", timeout=30).json()
        if job["status"] in {"succeeded", "failed", "cancelled"}:
            return job
        time.sleep(1)
    raise SystemExit(f"device_check: job {jid} did not finish within {timeout_s:.0f}s")


def _recorded(env: dict[str, str], jid: str) -> dict[str, Any]:
    """What the worker recorded on the job: its stages' seconds (``jobs.observed``, internal, read from the database;
    issue 20 moved them out of ``hyperparameters``, where a retried attempt's manifest picked them up)."""
    import sqlalchemy as sa

    engine = sa.create_engine(env["KEEL_DATABASE_URL"])
    with engine.connect() as conn:
        seen = conn.execute(sa.text("SELECT observed FROM jobs WHERE id = :id"), {"id": jid}).scalar_one()
    engine.dispose()
    seen = json.loads(seen) if isinstance(seen, str) else seen  # JSONB comes back parsed, SQLite's JSON as text
    return {k: seen.get(k) for k in ("train_wall_s", "realign_wall_s", "observed_tokens_per_s")}


def _env(database_url: str, broker_url: str, root: Path, dry: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(KEEL_DATABASE_URL=database_url, KEEL_BROKER_URL=broker_url, C_FORCE_ROOT="1", PYTHONUNBUFFERED="1")
    env.update(KEEL_DATA_DIR=str(root / "data"), KEEL_STORE_DIR=str(root / "store"))
    env["KEEL_DEVICE"] = "cpu" if dry else "cuda"
    return env


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes, the testbed as the model")
    ap.add_argument("--out", required=True, help="the JSON file to write")
    args = ap.parse_args(argv)
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        raise SystemExit("device_check: no CUDA device (use --dry-run on a CPU machine)")
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="keel-device-check-"))
    root.chmod(0o755)  # the PostgreSQL user reads its cluster under it
    (root / "data").mkdir()
    device = "cpu" if args.dry_run else torch.cuda.get_device_name(0)
    report: dict[str, Any] = {"dry_run": args.dry_run, "device": device, "torch": torch.__version__}
    try:
        with services(root / "services") as svc:
            env = _env(svc.database_url, svc.broker_url, root, args.dry_run)
            report["services"] = {"postgres_bin": svc.pg_bin, "redis_bin": svc.redis_bin}
            model_id, model_dir = prepare_model(args.dry_run, env)
            t = time.monotonic()
            report["throughput"] = throughput(model_dir, args.dry_run)
            report["throughput_s"] = round(time.monotonic() - t, 1)
            report["job"] = run_job(env, model_id, args.dry_run, root)
    finally:
        report["total_s"] = round(time.monotonic() - started, 1)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(finite_json(report), indent=2, default=str, allow_nan=False)  # a NaN loss: null
        Path(args.out).write_text(text)
        shutil.rmtree(root, ignore_errors=True)
    print(text)
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
