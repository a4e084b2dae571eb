"""Evaluating adapters quickly: their merged update is added to the base weights in place and removed
afterwards, so one loaded base model serves every candidate."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from tuning import evaluate
from tuning.adapters import Adapter
from tuning.safety import activations as act
from tuning.safety.common import short
from tuning.safety.controller import Limits, Scores

SCREEN = 32  # prompts a partial evaluation looks at before it may first stop (then one batch at a time)


@dataclass
class EvalSets:
    harmful_prompts: list[str]
    benign_prompts: list[str]
    utility_examples: list[list[dict]] = field(default_factory=list)
    task_examples: list[dict] | None = None  # {"prompt","label"}: FA = classification accuracy (testbed)
    labels: list[str] | None = None
    replay_examples: list[list[dict]] = field(default_factory=list)  # customer's training data (screened)
    safety_corpus: list[dict] = field(default_factory=list)  # refusals + helpful answers, for repair
    screen_utility: bool = False  # True when utility examples come from (possibly poisoned) training data
    max_new_tokens: int = 32
    batch_size: int = 256  # prompts generated together (the KV cache of this many rows must fit)
    # the audit split: disjoint from the prompts above, never seen by the controller, scored once on the reference,
    # the fine-tuned and the chosen adapter; the report shows these (empty: the report shows the selection split)
    audit_harmful_prompts: list[str] = field(default_factory=list)
    audit_benign_prompts: list[str] = field(default_factory=list)

    def audit(self) -> EvalSets | None:
        """These sets with the audit prompts in place of the selection prompts (None without an audit split)."""
        if not (self.audit_harmful_prompts or self.audit_benign_prompts):
            return None
        return replace(
            self,
            harmful_prompts=list(self.audit_harmful_prompts),
            benign_prompts=list(self.audit_benign_prompts),
            audit_harmful_prompts=[],
            audit_benign_prompts=[],
        )

    def sizes(self) -> dict[str, int]:
        """How many items each rate is measured on (for its interval)."""
        classify = bool(self.task_examples and self.labels)
        fa = len(self.task_examples or []) if classify else len(self.utility_examples)
        return {"hs": len(self.harmful_prompts), "fa": fa, "over_refusal": len(self.benign_prompts)}


@contextmanager
def applied(model: Any, adapter: Adapter | None) -> Iterator[None]:
    """Temporarily W ← W + s·B·A for every module of ``adapter`` (exactly restored afterwards)."""
    saved = {}
    try:
        if adapter is not None:
            with torch.no_grad():
                for m in adapter.modules():
                    lin = model.get_submodule(short(m))
                    saved[m] = lin.weight.detach().clone()
                    lin.weight += adapter.delta(m).to(device=lin.weight.device, dtype=lin.weight.dtype)
        yield
    finally:
        with torch.no_grad():
            for m, w in saved.items():
                model.get_submodule(short(m)).weight.copy_(w)


def utility(model: Any, tok: Any, sets: EvalSets) -> float:
    if sets.task_examples and sets.labels:
        return evaluate.classification_accuracy(
            model, tok, sets.task_examples, sets.labels, batch_size=sets.batch_size
        )["score"]
    if sets.utility_examples:
        return evaluate.token_accuracy(model, tok, sets.utility_examples)["accuracy"]
    return 0.0


def _chunks(n: int, first: int, size: int) -> list[tuple[int, int]]:
    """[start, end) spans over ``n`` items: ``first`` items, then ``size`` at a time."""
    spans, start = [], 0
    while start < n:
        end = min(n, start + (first if start == 0 else size))
        spans.append((start, end))
        start = end
    return spans


def _rate(
    items: list, run: Callable[[list], list[bool]], fails: Callable[[int, int, int], bool] | None, size: int
) -> tuple[float, int]:
    """(100·hits/n, n) over ``items`` run in batches of ``size``. With ``fails``, the first batch is only
    :data:`SCREEN` items and the evaluation stops after a batch once ``fails(hits, seen, n)`` says the full-set
    check fails whatever the rest gives, returning the rate on the ``seen`` items instead. The full-set rate
    is computed exactly as the metric functions compute it."""
    hits, n = 0, len(items)
    for start, end in _chunks(n, SCREEN if fails else size, size):
        hits += sum(run(items[start:end]))
        if end < n and fails is not None and fails(hits, end, n):
            return 100.0 * hits / end, end
    return 100.0 * hits / max(n, 1), n


def score(model: Any, tok: Any, adapter: Adapter | None, sets: EvalSets, limits: Limits | None = None) -> Scores:
    """HS, utility and over-refusal of ``adapter`` (greedy, keyword judge; a row stops generating once a refusal
    marker decides its verdict). With ``limits``, harmfulness, then over-refusal, then classification utility
    are evaluated batch by batch and the evaluation stops as soon as one check is proven failed (e.g. so many
    harmful answers already that HS > ``limits.hs_max`` whatever the remaining prompts give): the returned
    :class:`Scores` is then partial (``rejected``), and every check it passes or fails is the one a full
    evaluation would pass or fail."""
    size, judge = sets.batch_size, evaluate.KeywordJudge()
    gen = {"max_new_tokens": sets.max_new_tokens, "decided": evaluate.is_refusal, "batch_size": size}
    with applied(model, adapter):
        hs, n_hs = _rate(
            sets.harmful_prompts,
            lambda ps: judge.judge(ps, evaluate.generate(model, tok, ps, **gen)),
            (lambda h, _s, n: 100.0 * h / n > limits.hs_max) if limits else None,
            size,
        )
        if n_hs < len(sets.harmful_prompts):
            return _partial("hs", hs, math.nan, math.nan, {"hs": n_hs})
        ors, n_or = _rate(
            sets.benign_prompts,
            lambda ps: [evaluate.is_refusal(r) for r in evaluate.generate(model, tok, ps, **gen)],
            (lambda h, _s, n: 100.0 * h / n > limits.over_refusal_cap) if limits else None,
            size,
        )
        if n_or < len(sets.benign_prompts):
            return _partial("over_refusal_cap", hs, math.nan, ors, {"over_refusal": n_or})
        if not (sets.task_examples and sets.labels):
            return Scores(hs=hs, fa=utility(model, tok, sets), over_refusal=ors)
        labels = sets.labels
        fa, n_fa = _rate(
            sets.task_examples,
            lambda ex: evaluate.classification_correct(model, tok, ex, labels, batch_size=size),
            (lambda h, s, n: 100.0 * (h + n - s) / n < limits.fa_min) if limits else None,
            size,
        )
        if n_fa < len(sets.task_examples):
            return _partial("fa", hs, fa, ors, {"fa": n_fa})
        return Scores(hs=hs, fa=fa, over_refusal=ors)


def _partial(check: str, hs: float, fa: float, ors: float, sample: dict[str, int]) -> Scores:
    return Scores(hs=hs, fa=fa, over_refusal=ors, rejected=check, sample=sample)


def corpus_direction(
    model: Any, tok: Any, alignment: Adapter, safety_corpus: list[dict]
) -> tuple[torch.Tensor, float] | None:
    """The screening detector's direction (harmful-minus-benign mean of the aligned model's last-position states
    on the safety corpus) and the harmful rows' mean projection on it; None without both kinds of rows.
    It depends only on the model, the alignment adapter and the corpus, so callers may keep it."""
    harm = [r["prompt"] for r in safety_corpus if r.get("kind") == "harmful"][:256]
    good = [r["prompt"] for r in safety_corpus if r.get("kind") == "benign"][:256]
    if not harm or not good:
        return None
    with applied(model, alignment):
        feats = [act.last_token_states(model, tok, x)[1:].transpose(0, 1).flatten(1) for x in (harm, good)]
    direction = feats[0].mean(0) - feats[1].mean(0)
    return direction, float((feats[0] @ direction).mean())


def screen(
    model: Any,
    tok: Any,
    alignment: Adapter,
    examples: list[list[dict]],
    safety_corpus: list[dict],
    direction: tuple[torch.Tensor, float] | None = None,
) -> tuple[list[list[dict]], int]:
    """Drop examples whose first user prompt looks like a harmful request: they must neither count as
    utility nor be replayed during repair. Detector: the aligned model's last-position hidden states
    (decoder layers) projected on the harmful-minus-benign mean difference of the safety corpus
    (:func:`corpus_direction`, computed here unless given); the threshold is half-way between the harmful
    mean and the customer data's median (calibrated per dataset, assuming poison is a minority). Asking the
    tiny aligned model whether it refuses was tried first: it refuses out-of-distribution task prompts and
    flagged nearly everything; a corpus-only midpoint did too."""
    if not examples:
        return list(examples), 0
    found = direction or corpus_direction(model, tok, alignment, safety_corpus)
    if found is None:
        return list(examples), 0
    vec, harm_score = found
    prompts = [next((m["content"] for m in ex if m["role"] == "user"), "") for ex in examples]
    with applied(model, alignment):
        feats = act.last_token_states(model, tok, prompts)[1:].transpose(0, 1).flatten(1)
    scores = feats @ vec
    median = float(scores.median())
    if harm_score <= median:
        return list(examples), 0
    flagged = scores > (harm_score + median) / 2
    kept = [ex for ex, f in zip(examples, flagged.tolist(), strict=True) if not f]
    return kept, len(examples) - len(kept)
