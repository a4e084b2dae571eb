"""The job pipeline's stages: train → realign + evaluate → export. Each stage is idempotent: it first
looks for its own recorded artifact and returns it instead of redoing the work."""
from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from sqlalchemy import select

from core import events
from core.config import get_settings
from core.db import session_scope
from core.orm import Artifact, Job, SafetyReport
from models_store import build_adapter_zip, sha256_file
from tuning.specs import LoraSpec, TrainSpec
from workers.context import JobContext

log = logging.getLogger("keel.worker")


def find_artifact(job_id: str, kind: str) -> Artifact | None:
    with session_scope() as s:
        return s.scalar(select(Artifact).where(Artifact.job_id == job_id, Artifact.kind == kind))


def record_artifact(ctx: JobContext, kind: str, key: str, manifest: dict | None = None) -> None:
    path = ctx.store.path(key)
    with session_scope() as s:
        if s.scalar(select(Artifact.id).where(Artifact.job_id == ctx.job_id, Artifact.kind == kind)) is None:
            s.add(Artifact(job_id=ctx.job_id, kind=kind, storage_key=key, sha256=sha256_file(path),
                           bytes=path.stat().st_size, manifest=manifest or {}))


def set_stage(ctx: JobContext, stage: str, progress: float, message: str) -> None:
    with session_scope() as s:
        job = s.get(Job, ctx.job_id)
        job.stage, job.progress = stage, max(job.progress, progress)
        events.add(s, ctx.job_id, message, data={"stage": stage})


def train_specs(ctx: JobContext) -> tuple[TrainSpec, LoraSpec]:
    hp = ctx.hyperparameters
    steps = -(-len(ctx.train_examples) // hp["batch_size"]) * hp["n_epochs"]
    every = get_settings().checkpoint_every or max(1, steps // 4)
    spec = TrainSpec(n_epochs=hp["n_epochs"], batch_size=hp["batch_size"], seed=ctx.seed,
                     learning_rate=get_settings().base_learning_rate * hp["learning_rate_multiplier"],
                     max_seq_len=ctx.context_length, checkpoint_every=every)
    lora = LoraSpec(r=ctx.lora["r"], alpha=ctx.lora["alpha"], dropout=ctx.lora["dropout"],
                    target_modules=tuple(ctx.lora["target_modules"]))
    return spec, lora


def train(ctx: JobContext, progress) -> Path | None:  # noqa: ANN001
    """LoRA SFT (resuming from the newest checkpoint); None when cancelled."""
    raw_key = ctx.key("adapter_raw")
    if find_artifact(ctx.job_id, "adapter_raw") is not None:
        return ctx.store.path(raw_key)
    from tuning.modeling import load_model
    from tuning.train import train_lora

    spec, lora = train_specs(ctx)
    set_stage(ctx, "training", 0.0, f"Training LoRA r={lora.r} on {len(ctx.train_examples)} examples "
              f"({spec.n_epochs} epochs, batch {spec.batch_size}, lr {spec.learning_rate:g})")
    model, tok = load_model(ctx.base_path, device=get_settings().device)
    started = time.monotonic()
    result = train_lora(model, tok, ctx.train_examples, spec, lora, str(ctx.work / "train"), progress=progress,
                        init_adapter=ctx.lora.get("init_adapter"), resume=True, valid_examples=ctx.valid_examples)
    del model
    if result.cancelled:
        return None
    dest = ctx.store.path(raw_key)
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(result.adapter_dir, dest)
    _bundle(ctx, "adapter_raw", dest, {"variant": "raw", "train": {
        "steps": result.steps, "trained_tokens": result.trained_tokens, "final_loss": result.final_loss,
        "wall_s": round(time.monotonic() - started, 2), "resumed_from_step": result.resumed_from_step,
        "metrics": result.metrics}})
    _save_training_summary(ctx, result, progress)
    return dest


def _save_training_summary(ctx: JobContext, result, progress) -> None:  # noqa: ANN001
    with session_scope() as s:
        job = s.get(Job, ctx.job_id)
        job.trained_tokens = result.trained_tokens
        hp = dict(job.hyperparameters)
        hp["observed_tokens_per_s"] = progress.tokens_per_s or hp.get("observed_tokens_per_s")
        hp["train_wall_s"] = round(result.wall_s, 2)
        job.hyperparameters = hp
        events.add(s, ctx.job_id, f"Training finished: {result.steps} steps, final loss {result.final_loss:.4f}"
                   + (f" (resumed from step {result.resumed_from_step})" if result.resumed_from_step else ""),
                   data={"steps": result.steps, "final_loss": result.final_loss, **result.metrics})


def _bundle(ctx: JobContext, kind: str, adapter_dir: Path, info: dict) -> None:
    zip_key = ctx.key(f"{kind}.zip")
    manifest = build_adapter_zip(adapter_dir, ctx.store.path(zip_key),
                                 {"job_id": ctx.job_id, "base_model": ctx.model_id, "job_spec": ctx.spec_echo, **info})
    record_artifact(ctx, kind, zip_key, manifest)


def existing_report(job_id: str) -> dict | None:
    with session_scope() as s:
        row = s.scalar(select(SafetyReport).where(SafetyReport.job_id == job_id))
        return None if row is None else {"passed": row.passed, **row.data}


def save_report(ctx: JobContext, report: dict, mask_id: str | None, plot: Path | None) -> None:
    with session_scope() as s:
        if s.scalar(select(SafetyReport.id).where(SafetyReport.job_id == ctx.job_id)) is None:
            s.add(SafetyReport(job_id=ctx.job_id, mask_id=mask_id, passed=bool(report["passed"]), data=report))
        s.get(Job, ctx.job_id).mask_id = mask_id
    if plot is not None and plot.exists():
        key = ctx.key("safety_report.png")
        ctx.store.put_file(key, plot)
        record_artifact(ctx, "report_plot", key)


def export(ctx: JobContext, adapter_dir: Path, report: dict) -> None:
    if find_artifact(ctx.job_id, "adapter") is None:
        set_stage(ctx, "exporting", 95.0, "Exporting the realigned adapter")
        _bundle(ctx, "adapter", adapter_dir, {"variant": "realigned", "realignment": {
            k: report.get(k) for k in ("method", "strength", "mask", "before", "after", "passed")}})
