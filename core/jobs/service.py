"""Fine-tuning jobs: create (with dry run and idempotency), list, retrieve, cancel."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.base_models.models import BaseModelRecord
from core.base_models.service import lora_for_job, model_shape, require_model
from core.config import get_settings
from core.errors import Conflict, InvalidRequest, NotFound, RateLimited
from core.events import service as events
from core.files.service import get_file, token_stats
from core.files.states import Purpose
from core.ids import new_id, now
from core.jobs import repository as repo
from core.jobs.models import Job
from core.jobs.schemas import JobCreate
from core.jobs.states import INITIAL, TERMINAL, JobStatus
from core.queue import RUN_JOB, send_after_commit
from core.tenants.service import require_unrealigned_allowed
from tuning.plan import estimate_peak_memory_bytes, lora_param_count, resolve_auto_hyperparameters, total_steps
from tuning.safety.registry import effective_method, needs_alignment_adapter

DEFAULT_TOKENS_PER_S = 1500.0


def _request_hash(body: JobCreate) -> str:
    return hashlib.sha256(
        json.dumps(body.model_dump(mode="json", exclude={"dry_run"}), sort_keys=True).encode()
    ).hexdigest()


def _checked_file(session: Session, tenant_id: str, file_id: str, param: str, model_id: str) -> dict[str, Any]:
    row = get_file(session, tenant_id, file_id, param=param)
    if row.purpose != Purpose.FINE_TUNE:
        raise InvalidRequest(f"File '{file_id}' has purpose '{row.purpose}', not 'fine-tune'.", param=param)
    report = token_stats(session, row, model_id)
    if not report["valid"]:
        first = report["errors"][0]
        raise InvalidRequest(
            f"File '{file_id}' is invalid: {report['n_errors']} bad line(s); first at line "
            f"{first['line']}: {first['message']}",
            param=param,
            code=f"invalid_{param}",
        )
    return report


def _plan(body: JobCreate, report: dict[str, Any], model: BaseModelRecord) -> dict[str, Any]:
    n, tokens = report["n_examples"], report["tokens"].get("total_tokens", 0)
    if n < get_settings().min_examples:
        raise InvalidRequest(
            f"Training file must contain at least {get_settings().min_examples} examples (has {n}).",
            param="training_file",
            code="invalid_training_file",
        )
    auto = resolve_auto_hyperparameters(n, tokens)
    req = body.requested_hyperparameters().model_dump()
    hp = {k: (auto[k] if v == "auto" else v) for k, v in req.items()}
    steps, trained = total_steps(n, hp["batch_size"], hp["n_epochs"]), tokens * hp["n_epochs"]
    _check_size(steps, trained)
    lora = lora_for_job(model, body.lora)
    peak = peak_memory_bytes(model, lora, int(report["tokens"].get("max_tokens") or 0))
    _check_memory(peak)
    return {
        "hyperparameters": hp,
        "n_examples": n,
        "tokens_per_epoch": tokens,
        "total_steps": steps,
        "trained_tokens": trained,
        "estimated_peak_memory_bytes": peak,
        "lora": lora,
    }


def peak_memory_bytes(model: BaseModelRecord, lora: dict[str, Any], longest_row: int) -> int | None:
    """Estimated peak memory of the worker training this job (tuning.plan's model of the trainer: weights, the
    LoRA with its optimizer state, one micro-batch of KEEL_MICRO_BATCH_TOKENS or the longest row, truncated to
    the model's context length); None when the model's config cannot be read here."""
    shape = model_shape(model)
    if shape is None:
        return None
    longest = min(longest_row, model.context_length) if model.context_length else longest_row
    lora_params = lora_param_count(shape, int(lora["r"]), tuple(lora["target_modules"]))
    budget: int = get_settings().micro_batch_tokens
    return int(estimate_peak_memory_bytes(shape, lora_params, budget, longest))


def _check_memory(peak: int | None) -> None:
    """Refuse a job no worker can hold (KEEL_WORKER_MEMORY_BYTES), before anything is queued."""
    limit = get_settings().worker_memory_bytes
    if limit and peak is not None and peak > limit:
        raise InvalidRequest(
            f"This job would need about {peak / 2**30:.1f} GiB while training (its longest row and the base "
            f"model's size), more than a worker here has ({limit / 2**30:.1f} GiB). Use shorter rows (split long "
            "conversations) or ask the operator for a worker with more memory.",
            param="training_file",
            code="job_exceeds_worker_memory",
        )


def _check_size(steps: int, trained_tokens: int) -> None:
    """The operator's caps on a job's size, checked with the dry run's numbers before anything is queued."""
    s = get_settings()
    if trained_tokens > s.max_job_tokens:
        raise InvalidRequest(
            f"This job would train on {trained_tokens} tokens (tokens per epoch x epochs); the limit is "
            f"{s.max_job_tokens}. Use fewer examples or epochs.",
            param="training_file",
            code="job_too_many_tokens",
        )
    if steps > s.max_job_steps:
        raise InvalidRequest(
            f"This job would take {steps} optimizer steps; the limit is {s.max_job_steps}. Use fewer epochs or a "
            "larger batch size.",
            param="hyperparameters.n_epochs",
            code="job_too_many_steps",
        )


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def realign_seconds(session: Session, model_id: str, realign: str) -> float | None:
    """Seconds the realignment stage (with evaluation) took on this model's recent jobs: 0 when the job asks
    for none, None without history (the estimate's callers then take it as long as training)."""
    if realign == "none":
        return 0.0
    return _mean(repo.recent_observations(session, model_id, "realign_wall_s"))


def estimate_seconds(session: Session, model_id: str, trained_tokens: int, realign: str) -> tuple[float, float]:
    """(training, realignment + evaluation) seconds from this model's recent jobs. Without history: a
    conservative throughput, and realignment as long as training (its measured range is 0.7-5x)."""
    tps = _mean(repo.recent_observations(session, model_id, "observed_tokens_per_s")) or DEFAULT_TOKENS_PER_S
    train = trained_tokens / tps
    stage = realign_seconds(session, model_id, realign)
    return train, stage if stage is not None else train


def _replay(session: Session, tenant_id: str, key: str | None, digest: str) -> Job | None:
    existing = repo.by_idempotency_key(session, tenant_id, key) if key else None
    if existing is not None and existing.request_hash != digest:
        raise Conflict("Idempotency-Key was already used with a different request.", code="idempotency_conflict")
    return existing


def _seed(body: JobCreate, digest: str) -> int:
    return body.seed if body.seed is not None else int(digest[:8], 16) % 2**31


def dry_run(session: Session, tenant_id: str, body: JobCreate) -> dict[str, Any]:
    """Resolved hyperparameters, tokens, steps and an ETA; nothing is stored or queued."""
    model, _, plan = _validated(session, tenant_id, body)
    method = effective_method(body.safety.realign, bool(model.alignment_adapter))
    train, realign = estimate_seconds(session, model.id, plan["trained_tokens"], method)
    return {
        "object": "fine_tuning.job.dry_run",
        "model": model.id,
        **plan,
        "lora": public_lora(plan["lora"]),
        "estimated_seconds": round(train + realign, 1),
        "estimated_train_seconds": round(train, 1),
        "estimated_realign_seconds": round(realign, 1),
        "seed": _seed(body, _request_hash(body)),
        "safety": body.safety.model_dump(),
    }


def _validated(
    session: Session, tenant_id: str, body: JobCreate
) -> tuple[BaseModelRecord, dict[str, Any], dict[str, Any]]:
    if body.integrations:
        raise InvalidRequest("integrations are not supported by this server.", param="integrations")
    model = require_model(session, body.model)
    report = _checked_file(session, tenant_id, body.training_file, "training_file", model.id)
    if body.validation_file:
        _checked_file(session, tenant_id, body.validation_file, "validation_file", model.id)
    plan = _plan(body, report, model)
    if body.safety.realign == "none":
        require_unrealigned_allowed(session, tenant_id)
    if needs_alignment_adapter(body.safety.realign) and not model.alignment_adapter:
        raise InvalidRequest(
            f"Realignment method '{body.safety.realign}' needs a base model with an alignment "
            "adapter; this one has none.",
            param="safety.realign",
        )
    return model, report, plan


def create_job(session: Session, tenant_id: str, body: JobCreate, idempotency_key: str | None) -> Job:
    """Create and enqueue a job (sent to the broker once the request's unit of work commits).
    An Idempotency-Key replay returns the original job."""
    digest = _request_hash(body)
    existing = _replay(session, tenant_id, idempotency_key, digest)
    if existing is not None:
        return existing
    model, report, plan = _validated(session, tenant_id, body)
    cap = get_settings().max_active_jobs_per_tenant
    if repo.active_count(session, tenant_id) >= cap:
        raise RateLimited(
            f"At most {cap} jobs may be queued, running or paused per organization; wait for "
            "one to finish or cancel one.",
            retry_after_s=60,
            code="quota_exceeded",
        )
    job = Job(
        id=new_id("ftjob-"),
        tenant_id=tenant_id,
        model=model.id,
        training_file=body.training_file,
        validation_file=body.validation_file,
        status=INITIAL,
        hyperparameters=plan["hyperparameters"],
        lora=plan["lora"],
        safety=body.safety.model_dump(),
        keep_last_checkpoint=body.keep_last_checkpoint,
        suffix=body.suffix,
        seed=_seed(body, digest),
        metadata_=body.metadata,
        idempotency_key=idempotency_key,
        request_hash=digest,
        dispatched_at=now(),
    )
    try:
        repo.add(session, job)
    except IntegrityError as exc:  # a concurrent request with the same Idempotency-Key won
        raise Conflict(
            "A request with this Idempotency-Key is already being processed.", code="idempotency_conflict"
        ) from exc
    events.add(session, job.id, f"Created fine-tuning job: {job.id}")
    events.add(
        session,
        job.id,
        f"Validated training file: {report['n_examples']} examples, {report['tokens'].get('total_tokens', 0)} tokens",
        data={"validation": {k: report[k] for k in ("n_examples", "tokens")}},
    )
    events.add(session, job.id, "Fine-tuning job enqueued")
    send_after_commit(session, RUN_JOB, job.id)
    return job


def get_job(session: Session, tenant_id: str, job_id: str) -> Job:
    job = repo.get(session, job_id)
    if job is None or job.tenant_id != tenant_id:
        raise NotFound("fine-tuning job", job_id, param="fine_tuning_job_id")
    return job


def list_jobs(
    session: Session, tenant_id: str, after: str | None, limit: int, metadata: dict[str, str] | None
) -> tuple[list[Job], bool]:
    cursor = get_job(session, tenant_id, after) if after else None
    return repo.page(session, tenant_id, cursor, limit, metadata)


_REFUSALS = {
    JobStatus.CANCELLED: ("cancelled", "job_not_cancellable"),
    JobStatus.PAUSED: ("paused", "job_not_pausable"),
    JobStatus.QUEUED: ("resumed", "job_not_paused"),
}


def _request_transition(
    session: Session, tenant_id: str, job_id: str, target: JobStatus, message: str, **values: Any
) -> Job:
    """A tenant's cancel / pause / resume: one guarded UPDATE; 409 when the job's status does not allow it.
    Resume is guarded on ``paused`` in the UPDATE itself (queued is also reachable from running, and a job
    read as paused may be running again by the time the UPDATE runs)."""
    job = get_job(session, tenant_id, job_id)
    guard = (Job.status == JobStatus.PAUSED,) if target == JobStatus.QUEUED else ()
    moved = repo.transition(session, job_id, target, *guard, **values)
    session.refresh(job)
    if not moved:
        verb, code = _REFUSALS[target]
        raise Conflict(f"Job '{job_id}' is {job.status} and cannot be {verb}.", code=code)
    events.add(session, job_id, message)
    return job


def cancel_job(session: Session, tenant_id: str, job_id: str) -> Job:
    return _request_transition(
        session,
        tenant_id,
        job_id,
        JobStatus.CANCELLED,
        "Job cancelled by request",
        finished_at=now(),
        estimated_finish=None,
    )


def pause_job(session: Session, tenant_id: str, job_id: str) -> Job:
    """Running or queued → paused: the worker stops at its next step; checkpoints are kept for resume."""
    return _request_transition(
        session,
        tenant_id,
        job_id,
        JobStatus.PAUSED,
        "Job paused by request; resume continues from the last checkpoint",
        lease_owner=None,
        lease_expires_at=None,
        estimated_finish=None,
    )


def resume_job(session: Session, tenant_id: str, job_id: str) -> Job:
    job = _request_transition(
        session, tenant_id, job_id, JobStatus.QUEUED, "Job resumed by request; queued", dispatched_at=now()
    )
    send_after_commit(session, RUN_JOB, job_id)
    return job


def queue_positions(session: Session, jobs: list[Job]) -> dict[str, int]:
    """Queue positions (1 = next to run) of the queued ones among ``jobs``, in one query."""
    return repo.queue_positions(session, [j.id for j in jobs if j.status == JobStatus.QUEUED])


def active_job_using(session: Session, file_id: str) -> str | None:
    """Id of an active job that reads the file, if any (asked when the file is deleted)."""
    return repo.active_job_using(session, file_id)


def started_at(session: Session, job_id: str) -> int | None:
    """When the job first started running (its first attempt's claim)."""
    job = session.get(Job, job_id)
    return job.started_at if job is not None else None


def fenced(session: Session, job_id: str, owner: str, attempt: int) -> bool:
    """Attempt ``attempt`` of ``owner`` still holds the job (renewing its lease; the row stays locked until the
    unit of work ends, so what the caller writes in it cannot land after a takeover)."""
    return repo.fence(session, job_id, owner, attempt, get_settings().job_lease_s)


def is_terminal(status: str | None) -> bool:
    return status in TERMINAL


def job_statuses(session: Session, job_ids: list[str]) -> dict[str, str]:
    """Status of each of ``job_ids`` that exists, in one query."""
    return repo.statuses(session, job_ids)


def public_lora(lora: dict[str, Any]) -> dict[str, Any]:
    """A job's LoRA settings without server paths (the init adapter becomes a flag)."""
    out = {k: v for k, v in lora.items() if k != "init_adapter"}
    return {**out, "continues_alignment": bool(lora.get("init_adapter"))}


def model_name(job: Job) -> str:
    return f"ft:{job.model}:{job.tenant_id}:{job.suffix or ''}:{job.id.removeprefix('ftjob-')[:8]}"


MAX_LISTED_MODELS = 1000


def fine_tuned_models(session: Session, tenant_id: str, model: str | None = None) -> tuple[list[Job], bool]:
    """The tenant's succeeded jobs (each is one fine-tuned model), newest first, at most
    ``MAX_LISTED_MODELS`` (and whether there were more); only the one named ``model`` when given."""
    rows = repo.succeeded(session, tenant_id, MAX_LISTED_MODELS + 1, model)
    return rows[:MAX_LISTED_MODELS], len(rows) > MAX_LISTED_MODELS
