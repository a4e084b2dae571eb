"""What a running job works with: its snapshot, its training data, the store and a scratch directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import get_settings
from core.db import session_scope
from core.jobs import lifecycle
from core.jobs.lifecycle import JobSnapshot
from core.storage import get_store
from models_store import Store, job_key
from tuning.rows import read_examples


@dataclass
class JobContext:
    spec: JobSnapshot
    owner: str  # our lease on the job (with spec.attempt, the fence every artifact and report goes through)
    train_examples: list[list[dict[str, Any]]]
    valid_examples: list[list[dict[str, Any]]] | None
    store: Store

    @property
    def job_id(self) -> str:
        return self.spec.job_id

    @property
    def work(self) -> Path:
        """Scratch for checkpoints, shared by the job's attempts (a shared volume in production so another
        worker can resume from a checkpoint)."""
        path = get_settings().scratch_dir / self.job_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def attempt_dir(self) -> Path:
        """This attempt's own scratch (bundles, realigned adapter, plots): a superseded attempt still running
        never writes where the current one does."""
        return self.attempt_work(self.spec.attempt)

    def attempt_work(self, attempt: int) -> Path:
        path = self.work / f"attempt-{attempt}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def key(self, name: str) -> str:
        """Store key of this attempt's ``name`` (an artifact row names the attempt whose bytes it recorded)."""
        return job_key(self.job_id, f"attempt-{self.spec.attempt}", name)


def load_context(job_id: str, owner: str) -> JobContext:
    with session_scope() as s:
        spec = lifecycle.snapshot(s, job_id)
    store = get_store()
    valid = _examples(store, spec.validation_key) if spec.validation_key else None
    return JobContext(
        spec=spec,
        owner=owner,
        train_examples=_examples(store, spec.training_key),
        valid_examples=valid,
        store=store,
    )


def _examples(store: Store, key: str) -> list[list[dict]]:
    """The file's examples, read line by line from the store (the raw file is never held whole)."""
    with store.open(key) as fh:
        return read_examples(fh)
