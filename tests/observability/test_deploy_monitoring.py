"""The monitoring files under deploy/: a Prometheus config that promtool accepts, and a Grafana dashboard whose
queries only name series that Keel's /metrics really exposes (a renamed metric breaks this test)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def _require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        if os.environ.get("KEEL_TEST_REQUIRE_STACK") == "1" or os.environ.get("CI"):
            pytest.fail(f"{binary} is required in CI (.ci/run installs Debian's prometheus)")
        pytest.skip(f"{binary} is absent (apt-get install prometheus)")
    return path


def test_prometheus_config_is_valid_and_scrapes_the_api():
    cfg = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    targets = [t for job in cfg["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    assert "api:8000" in targets
    out = subprocess.run(
        [_require("promtool"), "check", "config", str(DEPLOY / "prometheus.yml")], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def _base(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def test_dashboard_queries_name_real_series(client):
    dash = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\bkeel_[a-z_]+", e)}
    from prometheus_client.metrics import MetricWrapperBase
    from prometheus_client.parser import text_string_to_metric_families

    from core.observability import metrics

    exposed = {f.name for f in text_string_to_metric_families(client.get("/metrics").text)}  # DB gauges too
    exposed |= {m._name for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)}  # not yet observed
    missing = sorted(m for m in used if _base(m) not in exposed and m not in exposed)
    assert not missing, f"dashboard queries series /metrics does not expose: {missing}"
    wanted = {
        "keel_jobs", "keel_queue_depth", "keel_queue_oldest_age_seconds", "keel_jobs_finished",
        "keel_job_stage_seconds",
        "keel_training_tokens_per_second", "keel_realign_outcomes", "keel_harmfulness_score",
        "keel_http_request_duration_seconds", "keel_sse_streams_open", "keel_upload_bytes", "keel_webhook_deliveries",
    }  # fmt: skip
    assert wanted <= {_base(m) for m in used}, wanted - {_base(m) for m in used}
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])
