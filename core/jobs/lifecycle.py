"""The worker side of a job's life: claim, lease renewal, stage/progress, terminal transitions, reaping.

Every status change is a conditional UPDATE on (id, status[, lease owner]) through the transition table,
so a cancelled job is never resurrected and only the current lease owner can finish a job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from core.base_models import repository as models_repo
from core.config import get_settings
from core.errors import error_ref, job_error
from core.events import service as events
from core.files import repository as files_repo
from core.ids import now
from core.jobs import repository as repo
from core.jobs.models import Job
from core.jobs.service import model_name, public_lora
from core.jobs.states import JobStatus, Stage
from core.queue import RUN_JOB, send_after_commit
from core.results.service import publish

log = logging.getLogger("keel.jobs")

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
    micro_batch_tokens: int
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
        micro_batch_tokens=micro_batch_tokens(job.lost_workers),
        training_key=train.storage_key,
        validation_key=valid.storage_key if valid else None,
        spec_echo=spec,
    )


MIN_MICRO_BATCH_TOKENS = 64


def micro_batch_tokens(lost_workers: int) -> int:
    """Tokens per micro-batch for an attempt after ``lost_workers`` workers died running the job: the operator's
    budget (KEEL_MICRO_BATCH_TOKENS) halved for each loss, so a retry after a (likely) out-of-memory kill needs
    less activation memory."""
    budget = get_settings().micro_batch_tokens
    return max(MIN_MICRO_BATCH_TOKENS, budget >> max(0, lost_workers))


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


def renew(session: Session, job_id: str, owner: str, memory: dict[str, Any] | None = None) -> bool:
    """Extend our lease (recording the worker's memory sample); False once the job was cancelled, finished, or
    taken over."""
    return repo.renew(session, job_id, owner, get_settings().job_lease_s, memory)


def status(session: Session, job_id: str) -> str | None:
    return repo.status(session, job_id)


def holds_lease(session: Session, job_id: str, owner: str) -> bool:
    """The job is running under ``owner``'s lease (not cancelled, paused, finished or taken over)."""
    return repo.holds_lease(session, job_id, owner)


def started(session: Session, job_id: str, owner: str) -> None:
    job = _job(session, job_id)  # the worker's host and pid stay in the worker log: events are the tenant's
    events.add(session, job_id, f"A worker started the job (attempt {job.attempt})")


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


def fail(session: Session, job_id: str, owner: str, code: str, detail: str = "", ref: str | None = None) -> bool:
    """Fail the job with ``code``'s fixed message and a correlation id; ``detail`` (internal: exception text,
    paths) goes to this process's log under that id only."""
    ref = ref or error_ref()
    log.warning("job %s fails with %s (ref: %s): %s", job_id, code, ref, detail or "-")
    error = job_error(code, ref)
    return finish(session, job_id, owner, JobStatus.FAILED, f"Job failed: {error['message']}", "error", error=error)


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


def likely_oom(memory: dict[str, Any] | None) -> bool:
    """Whether the kernel's out-of-memory killer most likely stopped the worker: its supervisor saw it die of
    SIGKILL (the OOM killer's signal; Keel itself never SIGKILLs a worker with a job), or its last heartbeat
    found its cgroup/host memory at least 85% used or the worker alone holding half of it. A heartbeat samples
    every few seconds, so a spike between two samples is missed: then the code says ``worker_lost``."""
    if not memory:
        return False
    if memory.get("killed_by") == "SIGKILL":
        return True
    limit, used, rss = (int(memory.get(k) or 0) for k in ("limit_bytes", "used_bytes", "rss_bytes"))
    return limit > 0 and (used >= 0.85 * limit or rss >= 0.5 * limit)


def _lost_worker(session: Session, job: Job, t: int) -> str | None:
    """The job's worker died (its lease expired): retry it with half the tokens per micro-batch, or, at the
    ``max_attempts``-th lost worker, fail it as ``out_of_memory``/``worker_lost``. Returns the id if requeued."""
    lost, oom = job.lost_workers + 1, likely_oom(job.worker_memory)
    cause = "most likely out of memory" if oom else "cause unknown"
    log.warning("job %s: worker %s lost (%s; last memory sample %s)", job.id, job.lease_owner, cause, job.worker_memory)
    guard = (Job.lease_owner == job.lease_owner, Job.lease_expires_at < t)
    if lost >= get_settings().max_attempts:
        ref = error_ref()
        log.warning("job %s fails after %d lost workers (ref: %s)", job.id, lost, ref)
        error = job_error("out_of_memory" if oom else "worker_lost", ref)
        if repo.transition(session, job.id, JobStatus.FAILED, *guard, finished_at=t, lost_workers=lost, error=error):
            events.add(session, job.id, f"Job failed: {error['message']}", level="error")
        return None
    tokens = micro_batch_tokens(lost)
    if not repo.transition(
        session, job.id, JobStatus.QUEUED, *guard, lease_owner=None, dispatched_at=t, lost_workers=lost
    ):
        return None
    events.add(
        session,
        job.id,
        f"The worker running the job stopped heartbeating ({cause}); attempt {job.attempt + 1} resumes from the last "
        f"checkpoint with {tokens} tokens per micro-batch (half of the previous budget)",
        level="warn",
        data={"lost_workers": lost, "likely_out_of_memory": oom, "micro_batch_tokens": tokens},
    )
    return job.id


def _requeue_expired(session: Session, t: int) -> list[str]:
    return [jid for job in repo.expired_leases(session, t) if (jid := _lost_worker(session, job, t)) is not None]


def worker_killed(session: Session, owner_prefix: str, signal_name: str) -> list[str]:
    """The supervisor of a worker process saw it die of ``signal_name``: note it on the jobs that process ran
    (the evidence ``likely_oom`` reads) and let their leases expire now, so the reaper retries them at once."""
    out = []
    for job in repo.running_with_owner_prefix(session, owner_prefix):
        job.worker_memory = {**(job.worker_memory or {}), "killed_by": signal_name}
        job.lease_expires_at = now() - 1
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
