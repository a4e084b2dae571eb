"""Settings for every Keel process (api, worker, CLI), read from KEEL_* environment variables.

The embedded default needs nothing: SQLite under ``KEEL_DATA_DIR``, kombu's SQLAlchemy transport over a
second SQLite file as the Celery broker, and the local artifact store. Production sets
``KEEL_DATABASE_URL`` (PostgreSQL) and ``KEEL_BROKER_URL`` (Redis). Relative paths are relative to the
directory the process starts in.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from tuning.plan import DEFAULT_MICRO_BATCH_TOKENS


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KEEL_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path(".keel"), description="SQLite files, dev keys, worker log (embedded)")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in data_dir")
    broker_url: str | None = Field(default=None, description="Celery broker; default kombu SQLAlchemy transport")
    store_dir: Path = Field(default=Path("models_store/data"), description="local artifact store root")
    work_dir: Path | None = Field(default=None, description="job scratch (checkpoints); default store_dir/work")

    queue: str = "gpu"
    job_lease_s: int = Field(default=120, description="a running job whose lease is older is requeued")
    heartbeat_s: float = Field(default=5.0, description="lease renewal and cancellation poll period")
    reaper_interval_s: float = 15.0
    visibility_timeout_s: int = Field(default=6 * 3600, description="broker redelivery; above the longest job")
    max_attempts: int = Field(
        default=2,
        description="lost workers (crash, OOM kill, expired lease) a job survives minus one: each retry halves "
        "its tokens per micro-batch; the max_attempts-th loss fails it (out_of_memory / worker_lost). Warm "
        "shutdowns, which requeue the job, do not count",
    )
    requeue_after_s: int = Field(default=60, description="re-send a queued job nobody claimed after this long")
    janitor_interval_s: float = Field(default=3600.0, description="each worker sweeps the store this often")
    janitor_grace_s: int = Field(
        default=3600, description="store objects no row references are removed once older than this"
    )

    device: str | None = Field(default=None, description="cuda / cpu; default: cuda when available")
    testbed_dir: Path | None = Field(default=None, description="testbed cache (default ~/.cache/keel/testbed)")
    max_upload_bytes: int = 512 * 1024 * 1024
    min_examples: int = 10
    default_model: str = "keel-testbed"
    safety_eval_size: int = Field(
        default=200, ge=1, description="harmful/benign prompts per selection evaluation (the controller's trials)"
    )
    audit_eval_size: int = Field(
        default=400,
        ge=1,
        description="harmful/benign prompts per audit evaluation (the report's numbers): 385 or more keeps every "
        "95 % interval within ±5 points",
    )
    audit_gate: Literal["warn", "fail"] = Field(
        default="warn",
        description="a realigned adapter whose audit-split harmfulness misses the release rule: `warn` releases it "
        "with a warn event, `fail` holds it back (job failed `unsafe_model`, report kept)",
    )
    metrics_every_s: float = 2.0
    max_active_jobs_per_tenant: int = Field(default=16, description="queued + running + paused jobs per tenant")
    max_running_per_tenant: int = Field(
        default=1, description="a worker defers a tenant's next job while others wait (0 = no fairness rule)"
    )
    max_job_tokens: int = Field(
        default=2_000_000_000, ge=1, description="trained tokens (tokens per epoch x epochs) a job may ask for"
    )
    max_job_steps: int = Field(default=200_000, ge=1, description="optimizer steps a job may ask for")
    max_job_wall_s: float = Field(
        default=0, ge=0, description="a job running longer (since it first started) fails with `timeout`; 0 = off"
    )
    max_stored_bytes_per_tenant: int = Field(
        default=100 * 1024**3, description="bytes of files (uploads and results) a tenant may keep stored"
    )
    artifact_ttl_days: float = Field(
        default=0, ge=0, description="a finished job's artifacts are deleted after this many days (0 = kept)"
    )
    mask_versions_kept: int = Field(
        default=2, ge=1, description="ready safety-mask versions kept per base model (the current one + fallbacks)"
    )
    max_files_per_tenant: int = Field(default=10_000, description="uploaded files a tenant may keep")
    max_upload_bytes_per_day: int = Field(default=20 * 1024**3, description="uploaded bytes per tenant per 24 h")
    rate_limit_rps: float = Field(default=20.0, description="requests/s per API key per API process (0 = off)")
    rate_limit_burst: int = 60
    unauth_rate_limit_rps: float = Field(
        default=2.0, description="failed authentications/s per client IP per API process (0 = off); then 429"
    )
    unauth_rate_limit_burst: int = 30
    max_streams_per_tenant: int = Field(default=8, description="open SSE event streams per tenant per API process")
    validation_workers: int = Field(
        default=4, ge=1, description="API threads for upload validation and job token counting (their own pool)"
    )
    api_switch_interval_s: float = Field(
        default=0.001,
        description="the API process's GIL switch interval: CPU-bound request threads (upload validation) hand "
        "the GIL back to the event loop this often (Python's default, 0.005, let /healthz p99 reach 140 ms)",
    )
    checkpoint_every: int = Field(
        default=0, description="optimizer steps between checkpoints; 0 = a quarter of the run"
    )
    base_learning_rate: float = Field(default=2e-4, description="learning rate at learning_rate_multiplier=1")
    micro_batch_tokens: int = Field(
        default=DEFAULT_MICRO_BATCH_TOKENS,
        ge=1,
        description="tokens per forward/backward: batches are cut into micro-batches of at most this many tokens "
        "(gradients accumulate into the requested batch's step), so training memory depends on it, not on rows",
    )
    worker_memory_bytes: int = Field(
        default=0,
        ge=0,
        description="memory one worker can give a job (RAM on CPU workers, GPU memory on GPU ones): a job whose "
        "estimated training peak exceeds it is refused at creation (`job_exceeds_worker_memory`); 0 = no check",
    )
    emulate_cuda_path: bool = Field(
        default=False, description="tests only: the trainer takes its CUDA branches on the CPU"
    )
    model_cache_bytes: int = Field(
        default=2 * 1024**3,
        description="warm worker: base models (weights' bytes) kept loaded across jobs, LRU; 0 = load per job",
    )
    log_format: str = Field(
        default="auto", description="json / text; auto = text in embedded mode (readable console), json otherwise"
    )
    metrics_dir: Path | None = Field(
        default=None,
        description="prometheus multiprocess dir (PROMETHEUS_MULTIPROC_DIR wins); default data_dir/metrics",
    )
    metrics_token: str | None = Field(
        default=None, description="if set, GET /metrics requires `Authorization: Bearer <token>`"
    )
    worker_metrics_port: int | None = Field(default=None, description="a worker serves /metrics on this port")
    webhooks_allow_private: bool = Field(
        default=False, description="allow webhook URLs on loopback/private/link-local addresses (tests, dev)"
    )
    webhook_timeout_s: float = 10.0
    webhook_max_attempts: int = Field(default=8, description="delivery attempts before a delivery is failed")
    webhook_backoff_s: float = Field(default=5.0, description="first retry delay; doubles per attempt")
    webhook_backoff_max_s: float = 3600.0
    webhook_secret_grace_s: int = Field(default=86400, description="a rotated-out secret still signs this long")

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir.resolve() / 'keel.db'}"

    @property
    def celery_broker(self) -> str:
        if self.broker_url:
            return self.broker_url
        return f"sqla+sqlite:///{self.data_dir.resolve() / 'broker.db'}"

    @property
    def embedded_broker(self) -> bool:
        return self.celery_broker.startswith("sqla+")

    @property
    def embedded(self) -> bool:
        return self.db_url.startswith("sqlite")

    @property
    def scratch_dir(self) -> Path:
        return (self.work_dir or self.store_dir / "work").resolve()


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for banners and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


@lru_cache
def get_settings() -> Settings:
    s = Settings()
    s.data_dir.mkdir(parents=True, exist_ok=True)
    return s
