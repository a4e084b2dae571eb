"""The worker side of a job's life: claim, lease renewal, stage/progress, terminal transitions, reaping.

Every status change is a conditional UPDATE on (id, status[, lease owner]) through the transition table,
so a cancelled job is never resurrected and only the current lease owner can finish a job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from core.base_models import repository as models_repo
from core.config import get_settings
from core.events import service as events
from core.files import repository as files_repo
from core.ids import now
from core.jobs import repository as repo
from core.jobs.models import Job
from core.jobs.service import model_name, public_lora
from core.jobs.states import JobStatus, Stage
from core.queue import RUN_JOB, send_after_commit
from core.results.service import publish

TRAIN_SHARE = 80.0  # percent of the progress bar given to training; realignment/eval/export share the rest


@dataclass
class JobSnapshot:
    """A detached copy of what a job needs; no ORM object crosses into the long-running stages."""

    job_id: str
    tenant_id: str
    model_id: str
    base_path: str
    alignment_adapter: str | None
    context_length: int
    safety_data: dict[str, str]
    reference_scores: dict[str, Any]
    hyperparameters: dict[str, Any]
    lora: dict[str, Any]
    safety: dict[str, Any]
    seed: int
    suffix: str | None
    attempt: int
    training_key: str
    validation_key: str | None
    spec_echo: dict[str, Any] = field(default_factory=dict)


def snapshot(session: Session, job_id: str) -> JobSnapshot:
    job = _job(session, job_id)
    base = models_repo.get(session, job.model)
    assert base is not None, f"job {job_id} references a missing base model"
    train = files_repo.get(session, job.training_file)
    valid = files_repo.get(session, job.validation_file) if job.validation_file else None
    assert train is not None, f"job {job_id} references a missing training file"
    spec = {
        "model": job.model,
        "training_file": job.training_file,
        "validation_file": job.validation_file,
        "hyperparameters": job.hyperparameters,
        "lora": public_lora(job.lora),
        "safety": job.safety,
        "seed": job.seed,
        "suffix": job.suffix,
    }
    return JobSnapshot(
        job_id=job.id,
        tenant_id=job.tenant_id,
        model_id=base.id,
        base_path=base.path,
        alignment_adapter=base.alignment_adapter,
        context_length=base.context_length,
        safety_data=dict(base.safety_data),
        reference_scores=dict(base.reference_scores),
        hyperparameters=dict(job.hyperparameters),
        lora=dict(job.lora),
        safety=dict(job.safety),
        seed=job.seed,
        suffix=job.suffix,
        attempt=job.attempt,
        training_key=train.storage_key,
        validation_key=valid.storage_key if valid else None,
        spec_echo=spec,
    )


def _job(session: Session, job_id: str) -> Job:
    job = repo.get(session, job_id)
    if job is None:
        raise LookupError(f"job {job_id} does not exist")
    return job


def claim(session: Session, job_id: str, owner: str) -> bool:
    return repo.claim(session, job_id, owner, get_settings().job_lease_s)


def should_defer(session: Session, job_id: str) -> bool:
    """Fair scheduling: a queued job whose tenant already runs its share waits while another tenant's job is
    queued (the reaper re-sends it later), so one tenant's backlog cannot starve the others."""
    cap = get_settings().max_running_per_tenant
    job = repo.get(session, job_id)
    if cap <= 0 or job is None or job.status != JobStatus.QUEUED:
        return False
    return repo.running_count(session, job.tenant_id) >= cap and repo.others_waiting(session, job.tenant_id)


def renew(session: Session, job_id: str, owner: str) -> bool:
    """Extend our lease; False once the job was cancelled, finished, or taken over."""
    return repo.renew(session, job_id, owner, get_settings().job_lease_s)


def status(session: Session, job_id: str) -> str | None:
    return repo.status(session, job_id)


def holds_lease(session: Session, job_id: str, owner: str) -> bool:
    """The job is running under ``owner``'s lease (not cancelled, paused, finished or taken over)."""
    return repo.holds_lease(session, job_id, owner)


def started(session: Session, job_id: str, owner: str) -> None:
    events.add(session, job_id, f"Worker {owner} started the job (attempt {_job(session, job_id).attempt})")


def finish(
    session: Session, job_id: str, owner: str, status: JobStatus, message: str, level: str = "info", **values: Any
) -> bool:
    """Terminal transition by the lease owner of a still-running job; False if someone else moved it."""
    moved = repo.transition(
        session,
        job_id,
        status,
        Job.lease_owner == owner,
        finished_at=now(),
        estimated_finish=None,
        lease_expires_at=None,
        **values,
    )
    if moved:
        events.add(session, job_id, message, level=level)
    return moved


def fail(session: Session, job_id: str, owner: str, code: str, message: str) -> bool:
    return finish(
        session,
        job_id,
        owner,
        JobStatus.FAILED,
        f"Job failed: {message}",
        level="error",
        error={"code": code, "message": message, "param": None},
    )


def succeed(session: Session, job_id: str, owner: str) -> bool:
    """Succeed and publish the adapter as a result file, only if ``owner`` still holds the job."""
    job = _job(session, job_id)
    name = model_name(job)
    moved = finish(
        session,
        job_id,
        owner,
        JobStatus.SUCCEEDED,
        f"The job has successfully completed; model {name}",
        fine_tuned_model=name,
        progress=100.0,
        stage=None,
    )
    if moved:
        publish(session, job.id, job.tenant_id)
    return moved


def set_stage(session: Session, job_id: str, stage: Stage, progress: float, message: str) -> None:
    job = _job(session, job_id)
    job.stage, job.progress = stage, max(job.progress, progress)
    events.add(session, job_id, message, data={"stage": stage})


def record_step(
    session: Session, job_id: str, step: int, total: int, metrics: dict[str, Any], eta_s: float | None
) -> None:
    job = _job(session, job_id)
    job.progress = TRAIN_SHARE * step / max(total, 1)
    job.trained_tokens = int(metrics.get("trained_tokens", 0)) or job.trained_tokens
    if eta_s is not None:
        job.estimated_finish = now() + int(eta_s)
    data = {
        "step": step,
        "total_steps": total,
        **{k: (round(v, 6) if isinstance(v, float) else v) for k, v in metrics.items()},
    }
    events.add(
        session, job_id, f"Step {step}/{total}: training loss={metrics.get('loss', 0):.4f}", type="metrics", data=data
    )


def record_training(
    session: Session,
    job_id: str,
    trained_tokens: int,
    tokens_per_s: float | None,
    wall_s: float,
    message: str,
    data: dict[str, Any],
) -> None:
    job = _job(session, job_id)
    job.trained_tokens = trained_tokens
    seen = dict(job.observed)
    seen["observed_tokens_per_s"] = tokens_per_s or seen.get("observed_tokens_per_s")
    seen["train_wall_s"] = round(wall_s, 2)
    job.observed = seen
    events.add(session, job_id, message, data=data)


def record_realign(session: Session, job_id: str, wall_s: float) -> None:
    job = _job(session, job_id)
    job.observed = {**job.observed, "realign_wall_s": round(wall_s, 2)}


def set_mask(session: Session, job_id: str, mask_id: str | None) -> None:
    _job(session, job_id).mask_id = mask_id


def _requeue_expired(session: Session, t: int) -> list[str]:
    out = []
    for job in repo.expired_leases(session, t):
        if job.losses + 1 >= get_settings().max_attempts:  # losses, not attempts: a pause/resume is no loss
            msg = f"Worker lost {job.losses + 1} times; giving up."
            if repo.transition(
                session,
                job.id,
                JobStatus.FAILED,
                Job.lease_owner == job.lease_owner,
                finished_at=t,
                error={"code": "worker_lost", "message": msg, "param": None},
            ):
                events.add(session, job.id, msg, level="error")
            continue
        owner = job.lease_owner or "unknown"
        if repo.transition(
            session,
            job.id,
            JobStatus.QUEUED,
            Job.lease_owner == job.lease_owner,
            Job.lease_expires_at < t,
            lease_owner=None,
            dispatched_at=t,
            losses=Job.losses + 1,
        ):
            events.add(
                session,
                job.id,
                f"Worker {owner} stopped heartbeating; job requeued (attempt "
                f"{job.attempt + 1} will resume from the last checkpoint)",
                level="warn",
            )
            out.append(job.id)
    return out


def requeue(session: Session, job_id: str, owner: str, reason: str) -> bool:
    """The lease owner hands a running job back (worker shutting down); it resumes from its checkpoint."""
    moved = repo.transition(
        session,
        job_id,
        JobStatus.QUEUED,
        Job.lease_owner == owner,
        lease_owner=None,
        lease_expires_at=None,
        dispatched_at=now(),
    )
    if moved:
        events.add(session, job_id, f"{reason}; job requeued and will resume from the last checkpoint", level="warn")
        send_after_commit(session, RUN_JOB, job_id)
    return moved


def reap(session: Session, broker_backlog: int | None = None) -> list[str]:
    """Requeue jobs whose worker died and re-send queued jobs whose message the broker lost; returns re-sent
    ids. With the broker's backlog known, only as many stale jobs as messages are missing are re-sent
    (oldest first), so duplicates do not pile up with the queue; unknown backlog re-sends every stale job."""
    t = now()
    ids = _requeue_expired(session, t)
    stale = repo.stale_queued(session, t - get_settings().requeue_after_s)
    if broker_backlog is not None:
        missing = max(0, repo.queued_count(session) - len(ids) - broker_backlog)
        stale = sorted(stale, key=lambda j: (j.created_at, j.id))[:missing]
    for job in stale:
        job.dispatched_at = t
        ids.append(job.id)
    for job_id in ids:
        send_after_commit(session, RUN_JOB, job_id)
    return ids
