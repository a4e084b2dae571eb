"""OpenAI fine-tuning job, event and checkpoint objects plus Keel's job extensions and safety report."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from core.events.models import Checkpoint, JobEvent
from core.jobs.models import Job
from core.results.models import SafetyReport


class JobHyperparameters(BaseModel):
    n_epochs: int | str | None = None
    batch_size: int | str | None = None
    learning_rate_multiplier: float | str | None = None


class SupervisedMethod(BaseModel):
    hyperparameters: JobHyperparameters


class JobMethod(BaseModel):
    type: Literal["supervised"] = "supervised"
    supervised: SupervisedMethod


class JobObject(BaseModel):
    object: Literal["fine_tuning.job"] = "fine_tuning.job"
    id: str
    model: str
    created_at: int
    finished_at: int | None = None
    fine_tuned_model: str | None = None
    organization_id: str
    result_files: list[str]
    status: str
    validation_file: str | None = None
    training_file: str
    hyperparameters: JobHyperparameters
    trained_tokens: int | None = None
    error: dict[str, Any] | None = None
    user_provided_suffix: str | None = None
    seed: int
    estimated_finish: int | None = None
    integrations: list[dict[str, Any]] = Field(default_factory=list)
    metadata: dict[str, str] | None = None
    method: JobMethod
    stage: str | None = Field(default=None, description="Keel: training, realigning, evaluating, exporting")
    progress: float = Field(description="Keel: percent done")
    queue_position: int | None = Field(default=None, description="Keel: 1 = next to run")
    lora: dict[str, Any] = Field(description="Keel: resolved LoRA settings")
    safety: dict[str, Any] = Field(description="Keel: realignment options")
    attempt: int = Field(description="Keel: worker attempts so far")
    mask_id: str | None = Field(default=None, description="Keel: safety-mask version used")
    keep_last_checkpoint: bool = Field(default=False, description="Keel: the newest checkpoint outlives the job")

    @classmethod
    def of(cls, job: Job, queue_position: int | None, lora: dict[str, Any], result_files: list[str]) -> JobObject:
        hp = JobHyperparameters(
            **{k: job.hyperparameters.get(k) for k in ("n_epochs", "batch_size", "learning_rate_multiplier")}
        )
        return cls(
            id=job.id,
            model=job.model,
            created_at=job.created_at,
            finished_at=job.finished_at,
            fine_tuned_model=job.fine_tuned_model,
            organization_id=job.tenant_id,
            result_files=result_files,
            status=job.status,
            validation_file=job.validation_file,
            training_file=job.training_file,
            hyperparameters=hp,
            trained_tokens=job.trained_tokens,
            error=job.error,
            user_provided_suffix=job.suffix,
            seed=job.seed,
            estimated_finish=job.estimated_finish if job.status == "running" else None,
            metadata=job.metadata_,
            method=JobMethod(supervised=SupervisedMethod(hyperparameters=hp)),
            stage=job.stage,
            progress=round(job.progress, 1),
            queue_position=queue_position,
            lora=lora,
            safety=job.safety,
            attempt=job.attempt,
            mask_id=job.mask_id,
            keep_last_checkpoint=job.keep_last_checkpoint,
        )


class DryRun(BaseModel):
    object: Literal["fine_tuning.job.dry_run"] = "fine_tuning.job.dry_run"
    model: str
    hyperparameters: dict[str, Any]
    n_examples: int
    tokens_per_epoch: int
    total_steps: int
    trained_tokens: int
    estimated_peak_memory_bytes: int | None = None  # a training worker's peak (None: model config unreadable here)
    lora: dict[str, Any]
    estimated_seconds: float
    estimated_train_seconds: float
    estimated_realign_seconds: float
    seed: int
    safety: dict[str, Any]


class EventObject(BaseModel):
    object: Literal["fine_tuning.job.event"] = "fine_tuning.job.event"
    id: str
    created_at: int
    level: str
    message: str
    type: str
    data: dict[str, Any]

    @classmethod
    def of(cls, ev: JobEvent) -> EventObject:
        return cls(
            id=ev.id, created_at=ev.created_at, level=ev.level, message=ev.message, type=ev.type, data=ev.data or {}
        )


class CheckpointObject(BaseModel):
    object: Literal["fine_tuning.job.checkpoint"] = "fine_tuning.job.checkpoint"
    id: str
    created_at: int
    fine_tuned_model_checkpoint: str
    fine_tuning_job_id: str
    step_number: int
    metrics: dict[str, Any]

    @classmethod
    def of(cls, ck: Checkpoint, fine_tuned_model: str) -> CheckpointObject:
        return cls(
            id=ck.id,
            created_at=ck.created_at,
            fine_tuning_job_id=ck.job_id,
            step_number=ck.step_number,
            fine_tuned_model_checkpoint=f"{fine_tuned_model}:ckpt-step-{ck.step_number}",
            metrics=ck.metrics,
        )


class SafetyReportObject(BaseModel, extra="allow"):
    """Keel: harmfulness / over-refusal / utility before and after realignment (fields per the report)."""

    object: Literal["fine_tuning.job.safety_report"] = "fine_tuning.job.safety_report"
    id: str
    fine_tuning_job_id: str
    created_at: int
    passed: bool
    mask_id: str | None = None
    method: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    reference: dict[str, Any] | None = None

    @classmethod
    def of(cls, row: SafetyReport) -> SafetyReportObject:
        return cls(
            **{
                **row.data,
                "id": row.id,
                "fine_tuning_job_id": row.job_id,
                "created_at": row.created_at,
                "passed": row.passed,
                "mask_id": row.mask_id,
            }
        )
