"""Realignment + evaluation stage: run tuning.safety.realign_job with the base model's current mask."""
from __future__ import annotations

import json
import random
from pathlib import Path

from core import events
from core.config import get_settings
from core.db import session_scope
from workers.context import JobContext
from workers.masks import ensure_mask
from workers.stages import existing_report, save_report, set_stage

UTILITY_EXAMPLES = 64
REPLAY_EXAMPLES = 256


def _prompts(path: str | None, n: int, seed: int) -> list[str]:
    if not path:
        return []
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    prompts = [r["prompt"] for r in rows]
    random.Random(seed).shuffle(prompts)
    return prompts[:n]


def eval_sets(ctx: JobContext):  # noqa: ANN201
    """Harmful/benign prompts of the base model's safety data; utility = the customer's validation split,
    else a sample of the training data. The customer's data never leaves the job."""
    from tuning.safety import EvalSets

    n = get_settings().safety_eval_size
    rng = random.Random(ctx.seed)
    utility = ctx.valid_examples or ctx.train_examples
    utility = rng.sample(utility, min(UTILITY_EXAMPLES, len(utility)))
    replay = rng.sample(ctx.train_examples, min(REPLAY_EXAMPLES, len(ctx.train_examples)))
    corpus = ctx.safety_data.get("safety_corpus")
    rows = [json.loads(x) for x in Path(corpus).read_text().splitlines() if x.strip()] if corpus else []
    return EvalSets(harmful_prompts=_prompts(ctx.safety_data.get("harmful_eval"), n, 0),
                    benign_prompts=_prompts(ctx.safety_data.get("benign_eval"), n, 0),
                    utility_examples=utility, replay_examples=replay, safety_corpus=rows,
                    screen_utility=ctx.valid_examples is None)


def _event_cb(ctx: JobContext):  # noqa: ANN202
    def cb(message: str, data: dict | None = None) -> None:
        with session_scope() as s:
            events.add(s, ctx.job_id, message, data=data)
    return cb


def realign(ctx: JobContext, raw_dir: Path) -> tuple[Path, dict]:
    """Returns (adapter dir to export, report dict). Re-running reuses a stored report."""
    out = ctx.work / "realigned"
    report = existing_report(ctx.job_id)
    if report is not None and (out / "adapter_config.json").exists():
        return out, report
    from tuning.safety import plot_report, realign_job

    method = ctx.safety.get("realign", "auto") if ctx.alignment_adapter else "none"
    mask = ensure_mask(ctx.model_id) if method != "none" else None
    set_stage(ctx, "realigning", 82.0, f"Realigning with method '{method}'"
              + (f" (mask v{mask.version}, {mask.method})" if mask else ""))
    masks_dir = str(ctx.store.path(mask.storage_key)) if mask else None
    rep = realign_job(ctx.base_path, ctx.alignment_adapter, str(raw_dir), masks_dir, str(out), method=method,
                      eval_sets=eval_sets(ctx), device=get_settings().device, progress=_event_cb(ctx), seed=ctx.seed)
    report = rep.to_dict()
    report["mask"] = {"id": mask.id, "version": mask.version, "method": mask.method} if mask else None
    set_stage(ctx, "evaluating", 92.0, _summary(report))
    plot = ctx.work / "safety_report.png"
    plot_report(rep, str(plot))
    save_report(ctx, report, mask.id if mask else None, plot)
    return out, report


def _summary(report: dict) -> str:
    b, a = report.get("before", {}), report.get("after", {})
    return (f"Safety evaluation: harmfulness {b.get('hs')} -> {a.get('hs')}, utility {b.get('fa')} -> "
            f"{a.get('fa')}, over-refusal {b.get('over_refusal')} -> {a.get('over_refusal')}; "
            f"method {report.get('method')}, passed={report.get('passed')}")
