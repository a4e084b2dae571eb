"""Realignment + evaluation stage: run tuning's realignment with the base model's current mask."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.config import get_settings
from core.db import session_scope
from core.events import service as events
from core.jobs import lifecycle, outputs
from core.jobs.states import Stage
from core.results import service as results
from core.results.states import ArtifactKind
from tuning.rows import read_jsonl
from tuning.safety.registry import effective_method
from tuning.safety.report import audit_gate_event, gate_on_audit, rate
from tuning.safety.stats import split_selection_audit
from workers.context import JobContext
from workers.lease import LeaseLost
from workers.masks import ensure_mask, local_copy
from workers.stages.common import set_stage, store_artifact
from workers.warm import model_cache

UTILITY_EXAMPLES = 64
REPLAY_EXAMPLES = 256


def _rows(path: str | None) -> list[dict[str, Any]]:
    if not path:
        return []
    return read_jsonl(Path(path).read_bytes())


def _prompts(path: str | None, n: int) -> list[str]:
    prompts = [r["prompt"] for r in _rows(path)]
    random.Random(0).shuffle(prompts)
    return prompts[:n]


def split_prompts(data: dict[str, str], kind: str, n: int, n_audit: int | None = None) -> tuple[list[str], list[str]]:
    """(selection, audit) prompts of one kind ("harmful" or "benign"), at most ``n`` selection and ``n_audit``
    (default ``n``) audit prompts: the base model's ``{kind}_eval`` file is the selection split and
    ``{kind}_audit`` the audit split; a base model without an audit file has its eval prompts cut
    deterministically into two disjoint halves."""
    n_audit = n if n_audit is None else n_audit
    if data.get(f"{kind}_audit"):
        return _prompts(data.get(f"{kind}_eval"), n), _prompts(data.get(f"{kind}_audit"), n_audit)
    selection, audit = split_selection_audit([r["prompt"] for r in _rows(data.get(f"{kind}_eval"))])
    return selection[:n], audit[:n_audit]


def eval_sets(ctx: JobContext) -> Any:
    """Harmful/benign prompts of the base model's safety data (a selection split for the controller's trials,
    a disjoint audit split for the report); utility = the customer's validation split, else a sample of the
    training data. The customer's data never leaves the job."""
    from tuning.safety import EvalSets

    settings, data = get_settings(), ctx.spec.safety_data
    n, n_audit = settings.safety_eval_size, settings.audit_eval_size
    harmful, harmful_audit = split_prompts(data, "harmful", n, n_audit)
    benign, benign_audit = split_prompts(data, "benign", n, n_audit)
    rng = random.Random(ctx.spec.seed)
    utility = ctx.valid_examples or ctx.train_examples
    utility = rng.sample(utility, min(UTILITY_EXAMPLES, len(utility)))
    replay = rng.sample(ctx.train_examples, min(REPLAY_EXAMPLES, len(ctx.train_examples)))
    return EvalSets(
        harmful_prompts=harmful,
        benign_prompts=benign,
        audit_harmful_prompts=harmful_audit,
        audit_benign_prompts=benign_audit,
        utility_examples=utility,
        replay_examples=replay,
        safety_corpus=_rows(data.get("safety_corpus")),
        screen_utility=ctx.valid_examples is None,
    )


def _event_cb(ctx: JobContext) -> Any:
    def cb(message: str, data: dict[str, Any] | None = None) -> None:
        with session_scope() as s:
            events.add(s, ctx.job_id, message, data=data)

    return cb


def _stored(ctx: JobContext) -> tuple[Path, dict[str, Any]] | None:
    """A report an earlier attempt recorded, with the realigned adapter that attempt left in the scratch."""
    with session_scope() as s:
        report = results.stored_report(s, ctx.job_id)
    if report is None:
        return None
    out = ctx.attempt_work(int(report.get("attempt", ctx.spec.attempt))) / "realigned"
    return (out, report) if (out / "adapter_config.json").exists() else None


def realign(ctx: JobContext, raw_dir: Path, should_stop: Callable[[], bool]) -> tuple[Path, dict[str, Any]]:
    """Returns (adapter dir to export, report dict). Re-running reuses a stored report. Raises
    tuning.interfaces.Stopped when ``should_stop`` turns true (cancel, pause, shutdown), LeaseLost when our
    attempt was superseded before its report was recorded."""
    stored = _stored(ctx)
    if stored is not None:
        return stored
    out = ctx.attempt_dir / "realigned"
    from tuning.safety import plot_report, realign_job

    method = effective_method(ctx.spec.safety.get("realign", "auto"), bool(ctx.spec.alignment_adapter))
    mask = ensure_mask(ctx.spec.model_id, notify=_event_cb(ctx)) if method != "none" else None
    set_stage(
        ctx,
        Stage.REALIGNING,
        82.0,
        f"Realigning with method '{method}'" + (f" (mask v{mask.version}, {mask.method})" if mask else ""),
    )
    device = get_settings().device
    with model_cache().borrow(ctx.spec.base_path, device=device) as base:  # the model training used
        rep = realign_job(
            ctx.spec.base_path,
            ctx.spec.alignment_adapter,
            str(raw_dir),
            str(local_copy(mask.storage_key)) if mask else None,
            str(out),
            method=method,
            eval_sets=eval_sets(ctx),
            device=device,
            progress=_event_cb(ctx),
            seed=ctx.spec.seed,
            should_stop=should_stop,
            base=base,
            cache_dir=str(get_settings().scratch_dir / "cache" / "realign"),
        )
    report = rep.to_dict()
    report["mask"] = mask.summary() if mask else None
    report["attempt"] = ctx.spec.attempt
    report = gate_on_audit(report, get_settings().audit_gate)
    set_stage(ctx, Stage.EVALUATING, 92.0, _summary(report))
    if event := audit_gate_event(report):
        level, message = event
        with session_scope() as s:
            events.add(s, ctx.job_id, message, level=level, data={"release_rule": report["release_rule"]})
    plot = ctx.attempt_dir / "safety_report.png"
    plot_report(report, str(plot))
    _save(ctx, report, mask.id if mask else None, plot)
    return out, report


def _save(ctx: JobContext, report: dict[str, Any], mask_id: str | None, plot: Path) -> None:
    if plot.exists():
        store_artifact(ctx, ArtifactKind.REPORT_PLOT, plot, "safety_report.png")
    with session_scope() as s:
        if not outputs.save_report(s, ctx.job_id, ctx.owner, ctx.spec.attempt, report, mask_id):
            raise LeaseLost(f"job {ctx.job_id}: attempt {ctx.spec.attempt} lost its lease; report not recorded")
        lifecycle.set_mask(s, ctx.job_id, mask_id)
        lifecycle.record_realign(s, ctx.job_id, float(report.get("timings", {}).get("total_s", 0.0)))


def _summary(report: dict[str, Any]) -> str:
    """The job's stage message: the report's numbers (the audit split's when it has one), with 95 % intervals."""
    b, a = report.get("before", {}), report.get("after", {})

    def pair(m: str) -> str:
        return f"{rate(b, m).strip()} -> {rate(a, m).strip()}"

    return (
        f"Safety evaluation ({report.get('split', 'selection')} split, 95 % intervals): harmfulness {pair('hs')}, "
        f"utility {pair('fa')}, over-refusal {pair('over_refusal')}; method {report.get('method')}, "
        f"passed={report.get('passed')}"
    )
