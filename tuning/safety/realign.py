"""The realignment stage of a job: evaluate the fine-tuned adapter, realign it (one method or the adaptive
controller), evaluate again, write the chosen adapter and a JSON-serialisable report.

The parts live apart, each with one reason to change: the methods and their dispatch in
:mod:`tuning.safety.registry`, trials and the release rule in :mod:`tuning.safety.controller`, the loaded state
and evaluations in :mod:`tuning.safety.session`, the kept values in :mod:`tuning.safety.cache`, the timing clock
in :mod:`tuning.safety.clock`, the report in :mod:`tuning.safety.report`. This module only orchestrates."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable

from tuning.adapters import Adapter, write_adapter
from tuning.atomic import atomic_dir
from tuning.model_cache import Loaded
from tuning.safety.controller import ControllerResult, Scores, Tolerances, apply_once, auto_realign, limits, targets
from tuning.safety.registry import METHOD_NAMES, effective_method, escalates, strategies
from tuning.safety.report import RealignReport, rates, release_rule, unrealigned_reason
from tuning.safety.scoring import EvalSets
from tuning.safety.session import RealignSession

Log = Callable[[str, dict], None]


def _noop(msg: str, data: dict | None = None) -> None:
    pass


def realign_job(
    base_dir: str,
    alignment_adapter_dir: str | None,
    finetuned_adapter_dir: str,
    masks_dir: str | None,
    out_dir: str,
    method: str = "auto",
    eval_sets: EvalSets | None = None,
    tolerances: Tolerances | None = None,
    device: str | None = None,
    progress: Log | None = None,
    seed: int = 0,
    should_stop: Callable[[], bool] | None = None,
    base: Loaded | None = None,
    cache_dir: str | None = None,
) -> RealignReport:
    """Evaluate → realign → evaluate; write the chosen adapter to out_dir. ``method`` is one of
    :data:`~tuning.safety.registry.METHOD_NAMES`; ``'none'`` (or no alignment adapter) only evaluates and
    releases the adapter as trained. ``progress(message, data)`` receives the trial-by-trial log;
    ``should_stop()`` is polled between evaluations, trials and repair steps (raises :class:`Stopped`).
    ``base``: the base model already in memory (see :mod:`tuning.model_cache`), used instead of loading it.
    ``cache_dir``: where the aligned reference's HS / over-refusal and the screening direction are kept across
    processes (they depend only on the base model, the alignment adapter and the prompts)."""
    if method not in METHOD_NAMES or eval_sets is None:
        raise ValueError(f"method must be one of {METHOD_NAMES} (got {method!r}), with eval_sets")
    log, tol, t0, c0 = progress or _noop, tolerances or Tolerances(), time.monotonic(), time.process_time()
    aligned = alignment_adapter_dir is not None
    method = effective_method(method, aligned)
    r = RealignSession(
        base_dir, alignment_adapter_dir or finetuned_adapter_dir, finetuned_adapter_dir, masks_dir, eval_sets,
        device, base, cache_dir,
    )  # fmt: skip
    r.should_stop = should_stop or (lambda: False)
    flagged = r.screen_data() if method != "none" else 0
    with r.clock.part("reference_eval_s"):
        reference = r.reference() if aligned else Scores(0.0, 0.0, 0.0)
    with r.clock.part("before_eval_s"):
        before = r.evaluate(r.ft)
    log(
        f"Safety evaluation before realignment: HS {before.hs:.1f}, utility {before.fa:.1f}, "
        f"over-refusal {before.over_refusal:.1f} (aligned base model: HS {reference.hs:.1f})",
        before.rounded(),
    )
    timings = {"evaluate_before_s": round(time.monotonic() - t0, 2)}
    t1 = time.monotonic()
    try:
        res = _decide(r, method, before, reference, tol, log, seed)
    finally:
        r.close()  # repair runs' checkpoints
    timings["realign_s"] = round(time.monotonic() - t1, 2)
    shown = _audit(r, res, before, reference, aligned, tol)
    r.check()
    with r.clock.part("write_s"):
        _write_out(out_dir, res.adapter, finetuned_adapter_dir)  # type: ignore[arg-type]
    timings["total_s"] = round(time.monotonic() - t0, 2)
    timings["parts"] = {**r.clock.parts, "trials": [_trial_times(t) for t in res.trials]}
    timings["cpu_s"] = {"total": round(time.process_time() - c0, 3), **r.clock.cpu}
    data = {
        "replay_examples_kept": len(r.sets.replay_examples),
        "flagged_as_harmful": flagged,
        "utility_examples": len(r.sets.utility_examples),
    }
    strength = res.chosen.strength if res.chosen else None
    return RealignReport(
        method, res.passed, res.reason, shown["before"], shown["after"], shown["reference"], strength, res.info,
        res.trials, timings, data, shown["targets"], unrealigned_reason(method, aligned), shown["split"],
        shown["selection"], release_rule(shown["after"], shown["reference"], tol.hs_margin, shown["split"]),
    )  # fmt: skip


def _audit(
    r: RealignSession, res: ControllerResult, before: Scores, reference: Scores, aligned: bool, tol: Tolerances
) -> dict:
    """What the report shows: with an audit split, the reference, the fine-tuned and the released adapter scored
    once on it (the controller's selection-split numbers kept under ``selection``); without one, the selection
    split's numbers. Each with its 95 % intervals."""
    sel_sizes = r.sets.sizes()
    selected = {
        "before": rates(before, sel_sizes),
        "after": rates(res.scores or before, sel_sizes),
        "reference": rates(reference, sel_sizes),
        "targets": targets(before, reference, tol),
    }
    audit = r.sets.audit()
    if audit is None:
        return {**selected, "split": "selection", "selection": None}
    with r.clock.part("audit_eval_s"):
        ref = r.reference(audit) if aligned else Scores(0.0, 0.0, 0.0)
        ft = r.evaluate(r.ft, sets=audit)
        after = ft if res.adapter is None else r.evaluate(res.adapter, sets=audit)  # type: ignore[arg-type]
    sizes = audit.sizes()
    shown = {"before": rates(ft, sizes), "after": rates(after, sizes), "reference": rates(ref, sizes)}
    return {**shown, "targets": targets(ft, ref, tol), "split": "audit", "selection": selected}


def _trial_times(t: dict) -> dict:
    return {k: t[k] for k in ("strategy", "method_s", "eval_s", "method_cpu_s", "eval_cpu_s") if k in t}


def _decide(
    r: RealignSession, method: str, before: Scores, reference: Scores, tol: Tolerances, log: Log, seed: int
) -> ControllerResult:
    """What the stage releases: nothing changed (``none``), the controller's choice among the method's strategies
    (escalating ones), or the method applied once; every trial is decided by the controller's ``run_trial``."""
    if method == "none":
        return ControllerResult(True, None, None, before, {}, [], "realignment disabled for this job")
    if escalates(method):
        bounds = limits(before, reference, tol)  # a trial's evaluation stops once it is proven to fail them
        return auto_realign(
            strategies(method, seed), r.apply, lambda a: r.evaluate(a, bounds), before, reference, tol, log
        )
    (strat,) = strategies(method, seed)
    return apply_once(strat, r.apply, lambda a: r.evaluate(a), before, reference, tol)


def _write_out(out_dir: str, adapter: Adapter | None, ft_dir: str) -> None:
    if adapter is not None:
        write_adapter(out_dir, adapter)
        return
    with atomic_dir(out_dir) as tmp:
        shutil.copytree(ft_dir, tmp, dirs_exist_ok=True)
