"""A detached snapshot of what a job needs (no ORM objects cross into the long-running stages)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from core.config import get_settings
from core.db import session_scope
from core.files import read_file_bytes
from core.orm import BaseModel, File, Job
from core.validation import read_examples
from models_store import get_store
from models_store.local import LocalStore, job_key


@dataclass
class JobContext:
    job_id: str
    tenant_id: str
    model_id: str
    base_path: str
    alignment_adapter: str | None
    context_length: int
    safety_data: dict
    reference_scores: dict
    hyperparameters: dict
    lora: dict
    safety: dict
    seed: int
    suffix: str | None
    train_examples: list[list[dict]]
    valid_examples: list[list[dict]] | None
    store: LocalStore
    spec_echo: dict = field(default_factory=dict)

    @property
    def work(self) -> Path:
        return self.store.path(job_key(self.job_id, "work"))

    def key(self, *parts: str) -> str:
        return job_key(self.job_id, *parts)


def _examples(s, file_id: str | None) -> list[list[dict]] | None:  # noqa: ANN001
    if not file_id:
        return None
    return read_examples(read_file_bytes(s.get(File, file_id)))


def load_context(job_id: str) -> JobContext:
    with session_scope() as s:
        job = s.get(Job, job_id)
        base = s.get(BaseModel, job.model)
        spec = {"model": job.model, "training_file": job.training_file, "validation_file": job.validation_file,
                "hyperparameters": job.hyperparameters, "lora": job.lora, "safety": job.safety, "seed": job.seed,
                "suffix": job.suffix}
        return JobContext(
            job_id=job.id, tenant_id=job.tenant_id, model_id=base.id, base_path=base.path,
            alignment_adapter=base.alignment_adapter, context_length=base.context_length,
            safety_data=dict(base.safety_data), reference_scores=dict(base.reference_scores),
            hyperparameters=dict(job.hyperparameters), lora=dict(job.lora), safety=dict(job.safety),
            seed=job.seed, suffix=job.suffix, train_examples=_examples(s, job.training_file) or [],
            valid_examples=_examples(s, job.validation_file), store=get_store(get_settings().store_dir),
            spec_echo=json.loads(json.dumps(spec)),
        )
