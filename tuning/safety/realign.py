"""The realignment stage of a job: evaluate the fine-tuned adapter, realign it (one method or the adaptive
controller), evaluate again, write the chosen adapter and a JSON-serialisable report."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tuning.adapters import Adapter, read_adapter, write_adapter
from tuning.atomic import atomic_dir
from tuning.interfaces import StopOnly, Stopped
from tuning.model_cache import Loaded, dir_signature
from tuning.safety.controller import Limits, Scores, Tolerances, auto_realign, checks, limits, targets, trial
from tuning.safety.masks import load_masks
from tuning.safety.methods.fgsn import fgsn
from tuning.safety.methods.nlsr import nlsr
from tuning.safety.methods.repair import repair, repair_data, run_id
from tuning.safety.methods.safelora import safelora
from tuning.safety.registry import (
    ADAPTIVE,
    METHOD_NAMES,
    FgsnConfig,
    NlsrConfig,
    RepairConfig,
    SafeLoraConfig,
    Strategy,
    strategies,
)
from tuning.safety.scoring import EvalSets, applied, corpus_direction, score, screen, utility


@dataclass
class RealignReport:
    method: str
    passed: bool
    reason: str
    before: dict
    after: dict
    reference: dict
    strength: dict | None = None
    info: dict = field(default_factory=dict)
    trials: list[dict] = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    targets: dict = field(default_factory=dict)
    unrealigned_reason: str | None = None  # set when the adapter is released as trained without realignment

    def to_dict(self) -> dict:
        info = self.info or {}
        return {
            "method": self.method,
            "passed": self.passed,
            "reason": self.reason,
            "before": self.before,
            "after": self.after,
            "reference": self.reference,
            "targets": self.targets,
            "strength": self.strength,
            "modules_changed": info.get("modules_changed", []),
            "neurons_changed": info.get("neurons_changed", 0),
            "per_module_similarity": info.get("per_module_similarity", {}),
            "trials": self.trials,
            "timings": self.timings,
            "data_moderation": self.data,
            "judge": "keyword (Zou et al.)",
            "released_unrealigned": self.method == "none",
            "unrealigned_reason": self.unrealigned_reason,
        }


class Clock:
    """Seconds per named part of the stage (summed when a part repeats), for the report's ``timings``."""

    def __init__(self) -> None:
        self.parts: dict[str, float] = {}
        self.cpu: dict[str, float] = {}  # this process's CPU seconds per part (robust to a busy machine)

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        t, c = time.monotonic(), time.process_time()
        try:
            yield
        finally:
            self.parts[name] = round(self.parts.get(name, 0.0) + time.monotonic() - t, 3)
            self.cpu[name] = round(self.cpu.get(name, 0.0) + time.process_time() - c, 3)


class _Realigner:
    """Holds the loaded model, adapters, masks and evaluation sets for one job. ``base``: the base model
    already loaded (a warm worker's :class:`~tuning.model_cache.Loaded`); its ``memo`` keeps the masks and the
    aligned reference's safety scores for the next job on the same model."""

    def __init__(
        self,
        base_dir: str,
        alignment_dir: str,
        ft_dir: str,
        masks_dir: str | None,
        sets: EvalSets,
        device: str | None,
        base: Loaded | None = None,
        cache_dir: str | None = None,
    ) -> None:
        from tuning.modeling import load_model

        self.alignment_dir, self.clock = alignment_dir, Clock()
        self.cache_dir, self.base_signature = cache_dir, dir_signature(base_dir) if cache_dir else ()
        with self.clock.part("load_model_s"):
            self.model, self.tok = (base.model, base.tok) if base else load_model(base_dir, device=device)
        self.memo: dict = base.memo if base else {}
        with self.clock.part("load_adapters_s"):
            self.alignment, self.ft = read_adapter(alignment_dir), read_adapter(ft_dir)
        with self.clock.part("load_masks_s"):
            self.masks, self.mask_meta = self._masks(masks_dir) if masks_dir else ({}, {})
        self.sets = sets
        self.should_stop: Callable[[], bool] = _never
        self._scratch: tempfile.TemporaryDirectory | None = None

    def _masks(self, masks_dir: str) -> tuple[dict, dict]:
        key = ("masks", str(Path(masks_dir).resolve()), dir_signature(masks_dir))
        if key not in self.memo:
            self.memo[key] = load_masks(masks_dir)
        return self.memo[key]

    def direction(self) -> tuple[Any, float] | None:
        """The data-screening detector's direction (:func:`~tuning.safety.scoring.corpus_direction`), kept in
        ``memo``: it depends only on the model, the alignment adapter and the safety corpus."""
        corpus = json.dumps(
            [r.get("prompt") for r in self.sets.safety_corpus] + [r.get("kind") for r in self.sets.safety_corpus]
        )
        key = ("screen", dir_signature(self.alignment_dir), hashlib.sha256(corpus.encode()).hexdigest())
        return self._kept(key, lambda: corpus_direction(self.model, self.tok, self.alignment, self.sets.safety_corpus))

    def _kept(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """``memo[key]``, else the copy in ``cache_dir`` (kept across processes; keyed by the base model's files
        too), else ``compute()``, stored in both."""
        if key in self.memo:
            return self.memo[key]
        path = None
        if self.cache_dir:
            digest = hashlib.sha256(repr((key, self.base_signature)).encode()).hexdigest()[:24]
            path = Path(self.cache_dir) / f"{key[0]}-{digest}.pt"
            if path.exists():
                with contextlib.suppress(Exception):  # unreadable: computed again and rewritten
                    self.memo[key] = torch.load(path, weights_only=True)
                    return self.memo[key]
        value = self.memo[key] = compute()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")  # workers share the directory (pids repeat)
            torch.save(value, tmp)
            os.replace(tmp, path)
        return value

    def reference(self) -> Scores:
        """The aligned model's scores. Its HS and over-refusal depend only on the model, the alignment adapter and
        the held-out prompts, so they are kept in ``memo``; its utility is on this job's data."""
        sets = self.sets
        digest = hashlib.sha256(json.dumps([sets.harmful_prompts, sets.benign_prompts]).encode()).hexdigest()
        key = ("reference", dir_signature(self.alignment_dir), digest, sets.max_new_tokens)
        full: list[Scores] = []

        def evaluate() -> tuple[float, float]:
            full.append(self.evaluate(self.alignment))
            return (full[0].hs, full[0].over_refusal)

        hs, over_refusal = self._kept(key, evaluate)
        if full:
            return full[0]
        self.check()
        with applied(self.model, self.alignment):
            fa = utility(self.model, self.tok, sets)
        return Scores(hs=hs, fa=fa, over_refusal=over_refusal)

    def check(self) -> None:
        """Cooperative cancellation between evaluations and trials."""
        if self.should_stop():
            raise Stopped("realignment stopped")

    def apply(self, s: Strategy) -> tuple[Adapter, dict]:
        """Run the method function the strategy's config belongs to."""
        self.check()
        cfg = s.config
        if isinstance(cfg, NlsrConfig):
            return nlsr(self.ft, self.alignment, self.masks, cfg)
        if isinstance(cfg, FgsnConfig):
            return fgsn(self.ft, self.alignment, self.masks, cfg)
        if isinstance(cfg, SafeLoraConfig):
            return safelora(self.ft, self.alignment, cfg)
        return self._repair(cfg)

    def _repair(self, cfg: RepairConfig) -> tuple[Adapter, dict]:
        data = repair_data(self.sets.safety_corpus, self.sets.replay_examples, cfg.seed)
        fresh = copy.deepcopy(self.model)  # training must not touch the scoring model (pristine between evaluations)
        run_dir = None
        if cfg.run_epochs > 1:  # one directory per run (rows, learning rate, seed, length): its rungs resume there
            run_dir = str(Path(self.scratch()) / run_id(cfg))
        progress = StopOnly(self.should_stop)
        return repair(fresh, self.tok, self.ft, self.masks, data, cfg, progress=progress, run_dir=run_dir)

    def scratch(self) -> str:
        """A temporary directory for this realignment (repair runs), removed by :meth:`close`."""
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="keel-realign-")
        return self._scratch.name

    def close(self) -> None:
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None

    def evaluate(self, adapter: Adapter | None, limits: Limits | None = None) -> Scores:
        """Full scores; with ``limits`` possibly partial, stopped once a check is proven failed."""
        self.check()
        scores = score(self.model, self.tok, adapter, self.sets, limits)
        self.check()
        return scores


Log = Callable[[str, dict], None]


def _noop(msg: str, data: dict | None = None) -> None:
    pass


def _never() -> bool:
    return False


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
    if method not in METHOD_NAMES:
        raise ValueError(f"method must be one of {METHOD_NAMES}")
    log, tol, t0, c0 = progress or _noop, tolerances or Tolerances(), time.monotonic(), time.process_time()
    unrealigned = None
    if alignment_adapter_dir is None:
        method, unrealigned = "none", "the base model has no alignment adapter"
    elif method == "none":
        unrealigned = "realignment switched off for this job (the tenant's safety policy allows it)"
    align_dir = alignment_adapter_dir or finetuned_adapter_dir
    r = _Realigner(base_dir, align_dir, finetuned_adapter_dir, masks_dir, eval_sets, device, base, cache_dir)
    r.should_stop = should_stop or _never
    flagged = _screen_data(r) if method != "none" else 0
    with r.clock.part("reference_eval_s"):
        reference = r.reference() if alignment_adapter_dir else Scores(0.0, 0.0, 0.0)
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
        chosen, after, info, trials, passed, reason, strength = _decide(r, method, before, reference, tol, log, seed)
    finally:
        r.close()  # repair runs' checkpoints
    timings["realign_s"] = round(time.monotonic() - t1, 2)
    r.check()
    with r.clock.part("write_s"):
        _write_out(out_dir, chosen, finetuned_adapter_dir)
    timings["total_s"] = round(time.monotonic() - t0, 2)
    timings["parts"] = {**r.clock.parts, "trials": [_trial_times(t) for t in trials]}
    timings["cpu_s"] = {"total": round(time.process_time() - c0, 3), **r.clock.cpu}
    data = {
        "replay_examples_kept": len(r.sets.replay_examples),
        "flagged_as_harmful": flagged,
        "utility_examples": len(r.sets.utility_examples),
    }
    return RealignReport(
        method,
        passed,
        reason,
        before.rounded(),
        after.rounded(),
        reference.rounded(),
        strength,
        info,
        trials,
        timings,
        data,
        targets(before, reference, tol),
        unrealigned,
    )


def _screen_data(r: _Realigner) -> int:
    """Drop harmful-looking rows from the replay (and, when it comes from training data, the utility) examples;
    returns how many replay rows were flagged."""
    with r.clock.part("screen_data_s"):
        corpus, direction = r.sets.safety_corpus, r.direction()
        if r.sets.screen_utility:
            r.sets.utility_examples, _ = screen(r.model, r.tok, r.alignment, r.sets.utility_examples, corpus, direction)
        r.sets.replay_examples, flagged = screen(r.model, r.tok, r.alignment, r.sets.replay_examples, corpus, direction)
    return flagged


def _trial_times(t: dict) -> dict:
    return {k: t[k] for k in ("strategy", "method_s", "eval_s", "method_cpu_s", "eval_cpu_s") if k in t}


def _decide(
    r: _Realigner, method: str, before: Scores, reference: Scores, tol: Tolerances, log: Log, seed: int
) -> tuple[Adapter | None, Scores, dict, list[dict], bool, str, dict | None]:
    if method == "none":
        return None, before, {}, [], True, "realignment disabled for this job", None
    if method in ADAPTIVE:
        bounds = limits(before, reference, tol)  # a trial's evaluation stops once it is proven to fail them
        res = auto_realign(
            strategies(method, seed), r.apply, lambda a: r.evaluate(a, bounds), before, reference, tol, log
        )
        if res.passed and res.chosen is None:
            return None, before, {}, res.trials, True, res.reason, None
        strength = res.chosen.strength if res.chosen else None
        return res.adapter, res.scores or before, res.info, res.trials, res.passed, res.reason, strength
    strat = strategies(method, seed)[0]
    t = time.monotonic()
    adapter, info = r.apply(strat)
    t1 = time.monotonic()
    after = r.evaluate(adapter)
    ok = checks(after, before, reference, tol)
    reason = (
        "all targets met" if all(ok.values()) else f"targets missed: {', '.join(k for k, v in ok.items() if not v)}"
    )
    times = {"method_s": round(t1 - t, 3), "eval_s": round(time.monotonic() - t1, 3)}
    return adapter, after, info, [{**trial(strat, after, ok), **times}], all(ok.values()), reason, strat.strength


def _write_out(out_dir: str, adapter: Adapter | None, ft_dir: str) -> None:
    if adapter is not None:
        write_adapter(out_dir, adapter)
        return
    with atomic_dir(out_dir) as tmp:
        shutil.copytree(ft_dir, tmp, dirs_exist_ok=True)
