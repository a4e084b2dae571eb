"""Fine-tuning jobs service: create (with dry run and idempotency), list, retrieve, cancel."""
from __future__ import annotations

import hashlib
import json
import math

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import events
from core.config import get_settings
from core.errors import Conflict, InvalidRequest, NotFound
from core.files import get_file, read_file_bytes, tokenizer_for
from core.models import lora_for_job, require_model
from core.orm import File, Job, new_id, now
from core.schemas import JobCreate
from core.validation import validate_jsonl
from tuning.plan import resolve_auto_hyperparameters

ACTIVE = ("validating_files", "queued", "running")
TERMINAL = ("succeeded", "failed", "cancelled")
DEFAULT_TOKENS_PER_S = 1500.0


def _request_hash(body: JobCreate) -> str:
    return hashlib.sha256(json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def _checked_file(session: Session, tenant_id: str, file_id: str, param: str, model_id: str) -> dict:
    row: File = get_file(session, tenant_id, file_id, param=param)
    if row.purpose != "fine-tune":
        raise InvalidRequest(f"File '{file_id}' has purpose '{row.purpose}', not 'fine-tune'.", param=param)
    report = row.validation
    if row.validation.get("tokenized_with") != model_id:  # re-count with this model's tokenizer
        tokenizer, context = tokenizer_for(session, model_id)
        report = validate_jsonl(read_file_bytes(row), tokenizer, context)
    if not report["valid"]:
        first = report["errors"][0]
        raise InvalidRequest(f"File '{file_id}' is invalid: {report['n_errors']} bad line(s); first at line "
                             f"{first['line']}: {first['message']}", param=param, code=f"invalid_{param}")
    return report


def _resolve(body: JobCreate, report: dict, model) -> dict:  # noqa: ANN001
    n, tokens = report["n_examples"], report["tokens"].get("total_tokens", 0)
    if n < get_settings().min_examples:
        raise InvalidRequest(f"Training file must contain at least {get_settings().min_examples} examples "
                             f"(has {n}).", param="training_file", code="invalid_training_file")
    auto = resolve_auto_hyperparameters(n, tokens)
    req = body.requested_hyperparameters().model_dump()
    hp = {k: (auto[k] if v == "auto" else v) for k, v in req.items()}
    steps = math.ceil(n / hp["batch_size"]) * hp["n_epochs"]
    return {"hyperparameters": hp, "n_examples": n, "tokens_per_epoch": tokens, "total_steps": steps,
            "trained_tokens": tokens * hp["n_epochs"], "lora": lora_for_job(model, body.lora)}


def tokens_per_second(session: Session, model_id: str) -> float:
    """Mean throughput of the last jobs on this model (metrics events), else a conservative default."""
    rows = session.scalars(select(Job.hyperparameters).where(Job.model == model_id, Job.status == "succeeded")
                           .order_by(Job.finished_at.desc()).limit(5)).all()
    seen = [r.get("observed_tokens_per_s") for r in rows if r.get("observed_tokens_per_s")]
    return sum(seen) / len(seen) if seen else DEFAULT_TOKENS_PER_S


def create_job(session: Session, tenant_id: str, body: JobCreate, idempotency_key: str | None) -> tuple[Job | dict, bool]:
    """Returns (job or dry-run dict, created). An Idempotency-Key replay returns the original job."""
    if body.integrations:
        raise InvalidRequest("integrations are not supported by this server.", param="integrations")
    digest = _request_hash(body)
    if idempotency_key and not body.dry_run:
        existing = session.scalar(select(Job).where(Job.tenant_id == tenant_id, Job.idempotency_key == idempotency_key))
        if existing is not None:
            if existing.request_hash != digest:
                raise Conflict("Idempotency-Key was already used with a different request.", code="idempotency_conflict")
            return existing, False
    model = require_model(session, body.model)
    report = _checked_file(session, tenant_id, body.training_file, "training_file", model.id)
    if body.validation_file:
        _checked_file(session, tenant_id, body.validation_file, "validation_file", model.id)
    plan = _resolve(body, report, model)
    if body.safety.realign not in ("auto", "none") and not model.alignment_adapter:
        raise InvalidRequest(f"Realignment method '{body.safety.realign}' needs a base model with an alignment "
                             "adapter; this one has none.", param="safety.realign")
    if body.dry_run:
        eta = plan["trained_tokens"] / tokens_per_second(session, model.id)
        return {"object": "fine_tuning.job.dry_run", "model": model.id, **plan, "estimated_seconds": round(eta, 1),
                "seed": body.seed if body.seed is not None else 0, "safety": body.safety.model_dump()}, False
    job = Job(
        id=new_id("ftjob-"), tenant_id=tenant_id, model=model.id, training_file=body.training_file,
        validation_file=body.validation_file, status="validating_files", hyperparameters=plan["hyperparameters"],
        lora=plan["lora"], safety=body.safety.model_dump(), suffix=body.suffix,
        seed=body.seed if body.seed is not None else int(digest[:8], 16) % 2**31,
        metadata_=body.metadata, idempotency_key=idempotency_key, request_hash=digest,
        total_steps=plan["total_steps"],
    )
    session.add(job)
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent request with the same Idempotency-Key won
        raise Conflict("A request with this Idempotency-Key is already being processed.", code="idempotency_conflict") from exc
    events.add(session, job.id, f"Created fine-tuning job: {job.id}")
    events.add(session, job.id, f"Validated training file: {report['n_examples']} examples, "
               f"{report['tokens'].get('total_tokens', 0)} tokens", data={"validation": {k: report[k] for k in ("n_examples", "tokens")}})
    job.status = "queued"
    job.dispatched_at = now()
    events.add(session, job.id, "Fine-tuning job enqueued")
    return job, True


def get_job(session: Session, tenant_id: str, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.tenant_id != tenant_id:
        raise NotFound("fine-tuning job", job_id, param="fine_tuning_job_id")
    return job


def list_jobs(session: Session, tenant_id: str, after: str | None, limit: int,
              metadata: dict[str, str] | None) -> tuple[list[Job], bool]:
    q = select(Job).where(Job.tenant_id == tenant_id)
    if after:
        cur = get_job(session, tenant_id, after)
        q = q.where((Job.created_at < cur.created_at) | ((Job.created_at == cur.created_at) & (Job.id < cur.id)))
    rows = list(session.scalars(q.order_by(Job.created_at.desc(), Job.id.desc())))
    if metadata:
        rows = [j for j in rows if all((j.metadata_ or {}).get(k) == v for k, v in metadata.items())]
    return rows[:limit], len(rows) > limit


def cancel_job(session: Session, tenant_id: str, job_id: str) -> Job:
    job = get_job(session, tenant_id, job_id)
    if job.status in TERMINAL:
        raise Conflict(f"Job '{job_id}' is already {job.status} and cannot be cancelled.", code="job_not_cancellable")
    job.status, job.finished_at, job.estimated_finish = "cancelled", now(), None
    events.add(session, job.id, "Job cancelled by request")
    return job


def queue_position(session: Session, job: Job) -> int | None:
    if job.status != "queued":
        return None
    ahead = session.scalar(select(func.count()).select_from(Job).where(
        Job.status == "queued",
        (Job.created_at < job.created_at) | ((Job.created_at == job.created_at) & (Job.id < job.id))))
    return int(ahead or 0) + 1


def job_object(session: Session, job: Job) -> dict:
    hp = {k: job.hyperparameters.get(k) for k in ("n_epochs", "batch_size", "learning_rate_multiplier")}
    result_files = [f"{job.id}/adapter"] if job.status == "succeeded" else []
    return {
        "object": "fine_tuning.job", "id": job.id, "model": job.model, "created_at": job.created_at,
        "finished_at": job.finished_at, "fine_tuned_model": job.fine_tuned_model,
        "organization_id": job.tenant_id, "result_files": result_files, "status": job.status,
        "validation_file": job.validation_file, "training_file": job.training_file, "hyperparameters": hp,
        "trained_tokens": job.trained_tokens, "error": job.error, "user_provided_suffix": job.suffix,
        "seed": job.seed, "estimated_finish": job.estimated_finish if job.status == "running" else None,
        "integrations": [], "metadata": job.metadata_,
        "method": {"type": "supervised", "supervised": {"hyperparameters": hp}},
        # Keel extensions
        "stage": job.stage, "progress": round(job.progress, 1), "queue_position": queue_position(session, job),
        "lora": job.lora, "safety": job.safety, "attempt": job.attempt, "mask_id": job.mask_id,
    }


def job_status(session: Session, job_id: str) -> str | None:
    return session.scalar(select(Job.status).where(Job.id == job_id))


def model_name(job: Job) -> str:
    return f"ft:{job.model}:{job.tenant_id}:{job.suffix or ''}:{job.id.removeprefix('ftjob-')[:8]}"
