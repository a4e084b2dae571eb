"""Prometheus metrics, multiprocess-safe: every process (each uvicorn worker, each Celery worker) writes its
samples to files under one directory, and a scrape sums them.

The directory is ``PROMETHEUS_MULTIPROC_DIR`` when set, else ``KEEL_METRICS_DIR``, else ``data_dir/metrics``
(so `keel serve`'s API and worker share it and the API's /metrics shows both). It must be chosen before
prometheus_client is first imported, which is why this module sets it at import. File names carry the host
name as well as the pid, so containers sharing a volume (each with its own pid 1) never write the same file.

Series computed from the database at scrape time (jobs by status, queue depth, oldest queued age) come from
``core.hooks.DbCollector``, which only the API's /metrics registers (a worker's endpoint would count them twice).
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def _metrics_dir() -> Path:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    from core.config import get_settings

    s = get_settings()
    d = (s.metrics_dir or s.data_dir / "metrics").resolve()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(d)
    return d


METRICS_DIR = _metrics_dir()
METRICS_DIR.mkdir(parents=True, exist_ok=True)

from prometheus_client import (  # noqa: E402 (the directory must be set first)
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.registry import Collector  # noqa: E402

_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def process_id() -> str:
    """This process's identifier in the sample files' names (no '_': the collector splits names on it)."""
    return f"{_HOST}-{os.getpid()}"


values.ValueClass = values.MultiProcessValue(process_identifier=process_id)  # type: ignore[no-untyped-call]

STAGE_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200)
HS_BUCKETS = (0, 1, 2, 5, 10, 15, 20, 30, 40, 50, 60, 80, 100)

JOBS_FINISHED = Counter(
    "keel_jobs_finished", "Jobs that reached a terminal status, by status and base model", ["status", "model"]
)
STAGE_SECONDS = Histogram("keel_job_stage_seconds", "Wall time of a job stage", ["stage"], buckets=STAGE_BUCKETS)
TOKENS_PER_S = Histogram(
    "keel_training_tokens_per_second",
    "Training throughput of a job",
    ["model"],
    buckets=(10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000, 300000),
)
REALIGN_OUTCOMES = Counter(
    "keel_realign_outcomes", "Safety realignment results by method and outcome", ["method", "outcome"]
)
HARMFULNESS = Histogram(
    "keel_harmfulness_score", "Harmfulness score (HS, %) of a job's adapter", ["phase"], buckets=HS_BUCKETS
)
HTTP_SECONDS = Histogram(
    "keel_http_request_duration_seconds",
    "API request latency by route template, method and status",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SSE_OPEN = Gauge("keel_sse_streams_open", "Open job event streams", multiprocess_mode="livesum")
UPLOAD_BYTES = Counter("keel_upload_bytes", "Bytes of training/validation files uploaded")
WEBHOOK_DELIVERIES = Counter(
    "keel_webhook_deliveries", "Webhook delivery attempts by outcome (delivered, retry, failed)", ["outcome"]
)

_STAGES: dict[str, tuple[str, float]] = {}  # job id -> (stage, monotonic start) in this process


def stage_entered(job_id: str, stage: str) -> None:
    """The job's previous stage in this process (if any) ended now; ``stage`` starts."""
    stage_ended(job_id)
    _STAGES[job_id] = (str(stage), time.monotonic())


def stage_ended(job_id: str) -> None:
    started = _STAGES.pop(job_id, None)
    if started is not None:
        STAGE_SECONDS.labels(stage=started[0]).observe(time.monotonic() - started[1])


def realign_outcome(report: dict[str, Any]) -> str:
    if not report.get("passed"):
        return "unsafe_model"
    return "released_with_warning" if "warning" in str(report.get("reason", "")) else "passed"


def observe_report(report: dict[str, Any]) -> None:
    """A job's safety report was recorded: its outcome and HS before/after."""
    REALIGN_OUTCOMES.labels(method=str(report.get("method")), outcome=realign_outcome(report)).inc()
    for phase in ("before", "after"):
        hs = (report.get(phase) or {}).get("hs")
        if isinstance(hs, int | float):
            HARMFULNESS.labels(phase=phase).observe(float(hs))


def registry(*extra: Collector) -> CollectorRegistry:
    """Every process's samples in the metrics directory, plus ``extra`` collectors (the API adds the jobs read
    from the database at scrape time: core.hooks.DbCollector)."""
    reg = CollectorRegistry()
    multiprocess.MultiProcessCollector(reg, path=str(METRICS_DIR))  # type: ignore[no-untyped-call]
    for collector in extra:
        reg.register(collector)
    return reg


def render(*extra: Collector) -> tuple[bytes, str]:
    return generate_latest(registry(*extra)), CONTENT_TYPE_LATEST


def process_exited(pid: str | None = None) -> None:
    """Drop this (or a dead) process's live gauges (open streams) from the sums."""
    multiprocess.mark_process_dead(pid or process_id(), path=str(METRICS_DIR))  # type: ignore[no-untyped-call]


def sample_files() -> Iterable[Path]:
    return METRICS_DIR.glob("*.db")
