"""`bench/device_check.sh --dry-run`: the GPU device check's whole path on CPU (private PostgreSQL + Redis
started by the script, Keel vs Trainer throughput packed and padded, one job through `keel serve` on the
testbed), writing one JSON under $OUT."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # ~2-4 min on 2 cores (a testbed job with its realignment), plus the testbed build if not cached
def test_device_check_dry_run_writes_its_json(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(OUT=str(tmp_path), KEEL_PYTHON=sys.executable)
    out = subprocess.run(
        ["bash", "bench/device_check.sh", "--dry-run"], cwd=REPO, env=env, capture_output=True, text=True, timeout=1500
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    report = json.loads((tmp_path / "device_check.json").read_text())
    assert report["dry_run"] is True and report["device"] == "cpu"
    assert set(report["throughput"]) == {"packed", "padded"}
    for layout, tp in report["throughput"].items():
        assert tp["layout"] == layout and tp["same_tokens"], tp
        assert tp["a_keel"]["tokens_per_s"] > 0 and tp["b_trainer"]["tokens_per_s"] > 0
    job = report["job"]
    assert job["status"] == "succeeded" and job["error"] is None, job
    assert job["model"] == "keel-testbed" and job["trained_tokens"] > 0
    assert isinstance(job["realign_wall_s"], float) and isinstance(job["train_wall_s"], float)
    assert report["services"]["postgres_bin"] and report["services"]["redis_bin"]
