"""Training stage: LoRA SFT resuming from the newest checkpoint; idempotent via the adapter_raw artifact."""

from __future__ import annotations

import contextlib
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

from core import hooks
from core.config import get_settings
from core.db import session_scope
from core.jobs import lifecycle
from core.jobs.states import Stage
from core.results.states import ArtifactKind
from tuning.atomic import atomic_dir
from tuning.plan import total_steps
from tuning.specs import LoraSpec, TrainSpec
from workers.context import JobContext
from workers.stages.common import artifact_key, bundle_adapter, set_stage
from workers.warm import model_cache


def train_specs(ctx: JobContext) -> tuple[TrainSpec, LoraSpec]:
    hp, lora = ctx.spec.hyperparameters, ctx.spec.lora
    steps = total_steps(len(ctx.train_examples), hp["batch_size"], hp["n_epochs"])
    every = get_settings().checkpoint_every or max(1, steps // 4)
    spec = TrainSpec(
        n_epochs=hp["n_epochs"],
        batch_size=hp["batch_size"],
        seed=ctx.spec.seed,
        learning_rate=get_settings().base_learning_rate * hp["learning_rate_multiplier"],
        max_seq_len=ctx.spec.context_length,
        checkpoint_every=every,
        micro_batch_tokens=ctx.spec.micro_batch_tokens,  # KEEL_MICRO_BATCH_TOKENS, halved per lost worker
        emulate_cuda_path=get_settings().emulate_cuda_path,
    )
    return spec, LoraSpec(
        r=lora["r"], alpha=lora["alpha"], dropout=lora["dropout"], target_modules=tuple(lora["target_modules"])
    )


def train_dir(ctx: JobContext) -> Path:
    """This attempt's own training directory (a superseded attempt still running never writes into it),
    seeded with the newest complete checkpoint an earlier attempt left, so training resumes from it."""
    from tuning.train import latest_checkpoint

    out = ctx.attempt_dir / "train"
    if latest_checkpoint(out) is not None:
        return out
    earlier = [ctx.work / "train"] + [ctx.work / f"attempt-{n}" / "train" for n in range(ctx.spec.attempt)]
    found = [c for c in (latest_checkpoint(d) for d in earlier) if c is not None]
    for ckpt in sorted(found, key=lambda p: int(p.name.split("-")[1]), reverse=True):
        # an earlier attempt may still be pruning its directory: a copy that fails tries the next checkpoint
        with contextlib.suppress(OSError), atomic_dir(out / "checkpoints" / ckpt.name, prefix=".tmp-") as tmp:
            shutil.copytree(ckpt, tmp, dirs_exist_ok=True)
        if latest_checkpoint(out) is not None:
            break
    return out


def _restore_raw(ctx: JobContext, key: str) -> Path:
    """The trained adapter an earlier attempt recorded (possibly on another worker), unpacked from the store
    into this attempt's scratch."""
    dest = ctx.attempt_dir / "adapter_raw"
    if not (dest / "adapter_config.json").exists():
        dest.mkdir(parents=True, exist_ok=True)
        with ctx.store.open(key) as fh, zipfile.ZipFile(fh) as zf:
            zf.extractall(dest, [n for n in zf.namelist() if n != "manifest.json"])
    return dest


def train(ctx: JobContext, progress: Any) -> Path | None:
    """LoRA SFT; returns the trained adapter directory, or None when cancelled."""
    recorded = artifact_key(ctx.job_id, ArtifactKind.ADAPTER_RAW)
    if recorded is not None:
        return _restore_raw(ctx, recorded)
    from tuning.train import train_lora

    spec, lora = train_specs(ctx)
    set_stage(
        ctx,
        Stage.TRAINING,
        0.0,
        f"Training LoRA r={lora.r} on {len(ctx.train_examples)} examples "
        f"({spec.n_epochs} epochs, batch {spec.batch_size}, lr {spec.learning_rate:g}, "
        f"{spec.micro_batch_tokens} tokens per micro-batch)",
    )
    started = time.monotonic()
    if hasattr(progress, "attempt"):
        progress.attempt = ctx.spec.attempt  # a superseded attempt's steps and checkpoints are not recorded
    with model_cache().borrow(ctx.spec.base_path, device=get_settings().device) as base:  # LoRA detached after
        result = train_lora(
            base.model,
            base.tok,
            ctx.train_examples,
            spec,
            lora,
            str(train_dir(ctx)),
            progress=progress,
            init_adapter=ctx.spec.lora.get("init_adapter"),
            resume=True,
            valid_examples=ctx.valid_examples,
        )
    if result.cancelled:
        return None
    adapter = Path(result.adapter_dir)
    bundle_adapter(
        ctx,
        ArtifactKind.ADAPTER_RAW,
        adapter,
        {
            "variant": "raw",
            "train": {
                "steps": result.steps,
                "trained_tokens": result.trained_tokens,
                "final_loss": result.final_loss,
                "wall_s": round(time.monotonic() - started, 2),
                "resumed_from_step": result.resumed_from_step,
                "metrics": result.metrics,
            },
        },
    )
    _record_training(ctx, result, progress)
    return adapter  # exactly what was bundled (the zip is only unpacked when a later attempt needs it)


def _record_training(ctx: JobContext, result: Any, progress: Any) -> None:
    hooks.trained(ctx.spec.model_id, progress.tokens_per_s)
    resumed = f" (resumed from step {result.resumed_from_step})" if result.resumed_from_step else ""
    with session_scope() as s:
        lifecycle.record_training(
            s,
            ctx.job_id,
            result.trained_tokens,
            progress.tokens_per_s,
            result.wall_s,
            f"Training finished: {result.steps} steps, final loss {result.final_loss:.4f}{resumed}",
            {"steps": result.steps, "final_loss": result.final_loss, **result.metrics},
        )
