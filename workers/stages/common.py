"""Shared by the stages: stage transitions and recording artifacts (idempotently, fenced by the attempt's lease)
through core services."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core import hooks
from core.db import session_scope
from core.jobs import lifecycle, outputs
from core.jobs.states import Stage
from core.results import service as results
from core.results.states import ArtifactKind
from models_store import build_adapter_zip, sha256_file
from workers.context import JobContext
from workers.lease import LeaseLost


def set_stage(ctx: JobContext, stage: Stage, progress: float, message: str) -> None:
    with session_scope() as s:
        lifecycle.set_stage(s, ctx.job_id, stage, progress, message)
    hooks.stage_entered(ctx.job_id, stage)


def artifact_key(job_id: str, kind: ArtifactKind) -> str | None:
    """Store key of the job's recorded ``kind`` artifact (whichever attempt recorded it), if any."""
    with session_scope() as s:
        row = results.find_artifact(s, job_id, kind)
        return row.storage_key if row is not None else None


def store_artifact(
    ctx: JobContext, kind: ArtifactKind, local: Path, name: str, manifest: dict[str, Any] | None = None
) -> None:
    """Upload ``local`` under this attempt's key and record it, fenced by our lease. An earlier attempt's row
    of the same kind is kept (ours is then redundant); raises LeaseLost, with our bytes removed, if our
    attempt no longer holds the job."""
    key = ctx.key(name)
    ctx.store.put_file(key, local)
    with session_scope() as s:
        row = outputs.record_artifact(
            s, ctx.job_id, ctx.owner, ctx.spec.attempt, (key, sha256_file(local), local.stat().st_size), kind, manifest
        )
        recorded = row.storage_key if row is not None else None
    if recorded != key:
        ctx.store.delete(key)
    if recorded is None:
        raise LeaseLost(f"job {ctx.job_id}: attempt {ctx.spec.attempt} lost its lease; {kind} not recorded")


def _publishable(adapter_dir: Path, base_model: str, job_id: str) -> None:
    """Name the base model by its registered id, never by a path on this server (PEFT writes the path into
    adapter_config.json and its README model card)."""
    cfg_path = adapter_dir / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    if cfg.get("base_model_name_or_path") != base_model:
        cfg["base_model_name_or_path"] = base_model
        cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True))
    readme = adapter_dir / "README.md"
    if readme.exists():
        readme.write_text(
            f"---\nbase_model: {base_model}\nlibrary_name: peft\n---\n\n# LoRA adapter for "
            f"{base_model}\n\nFine-tuned and safety-realigned by Keel (job {job_id}); see "
            "manifest.json for checksums, the job spec and the realignment summary.\n"
        )


def bundle_adapter(ctx: JobContext, kind: ArtifactKind, adapter_dir: Path, info: dict[str, Any]) -> None:
    """Zip a PEFT adapter directory with its manifest and store it as the job's ``kind`` artifact."""
    local = ctx.attempt_dir / f"{kind}.zip"
    _publishable(adapter_dir, ctx.spec.model_id, ctx.job_id)
    manifest = build_adapter_zip(
        adapter_dir,
        local,
        {"job_id": ctx.job_id, "base_model": ctx.spec.model_id, "job_spec": ctx.spec.spec_echo, **info},
    )
    store_artifact(ctx, kind, local, f"{kind}.zip", manifest)
