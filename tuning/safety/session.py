"""What one realignment holds while it runs: the loaded base model, the adapters, the masks, the evaluation sets;
its evaluations (the aligned reference's, kept across jobs) and the data screening."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tuning.adapters import Adapter, read_adapter
from tuning.interfaces import Stopped
from tuning.model_cache import Loaded, dir_signature
from tuning.safety.cache import Kept
from tuning.safety.clock import Clock
from tuning.safety.controller import Limits, Scores
from tuning.safety.masks import load_masks
from tuning.safety.registry import MethodInputs, Strategy, apply
from tuning.safety.scoring import EvalSets, applied, corpus_direction, score, screen, utility


def _never() -> bool:
    return False


class RealignSession:
    """Holds the loaded model, adapters, masks and evaluation sets for one job. ``base``: the base model already
    loaded (a warm worker's :class:`~tuning.model_cache.Loaded`); its ``memo`` keeps the masks and the aligned
    reference's safety scores for the next job on the same model; ``cache_dir`` keeps them across processes."""

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
        with self.clock.part("load_model_s"):
            self.model, self.tok = (base.model, base.tok) if base else load_model(base_dir, device=device)
        self.memo: dict = base.memo if base else {}
        self.kept = Kept(self.memo, cache_dir, dir_signature(base_dir) if cache_dir else ())
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
        """The data-screening detector's direction (:func:`~tuning.safety.scoring.corpus_direction`), kept: it
        depends only on the model, the alignment adapter and the safety corpus."""
        corpus = json.dumps(
            [r.get("prompt") for r in self.sets.safety_corpus] + [r.get("kind") for r in self.sets.safety_corpus]
        )
        key = ("screen", dir_signature(self.alignment_dir), hashlib.sha256(corpus.encode()).hexdigest())
        return self.kept.get(
            key, lambda: corpus_direction(self.model, self.tok, self.alignment, self.sets.safety_corpus)
        )

    def screen_data(self) -> int:
        """Drop harmful-looking rows from the replay (and, when it comes from training data, the utility)
        examples; returns how many replay rows were flagged."""
        with self.clock.part("screen_data_s"):
            sets, direction = self.sets, self.direction()
            corpus = sets.safety_corpus
            if sets.screen_utility:
                sets.utility_examples, _ = screen(
                    self.model, self.tok, self.alignment, sets.utility_examples, corpus, direction
                )
            sets.replay_examples, flagged = screen(
                self.model, self.tok, self.alignment, sets.replay_examples, corpus, direction
            )
        return flagged

    def reference(self, sets: EvalSets | None = None) -> Scores:
        """The aligned model's scores (on ``sets``, by default the selection split). Its HS and over-refusal depend
        only on the model, the alignment adapter and the held-out prompts, so they are kept; its utility is on this
        job's data."""
        sets = sets or self.sets
        digest = hashlib.sha256(json.dumps([sets.harmful_prompts, sets.benign_prompts]).encode()).hexdigest()
        key = ("reference", dir_signature(self.alignment_dir), digest, sets.max_new_tokens)
        full: list[Scores] = []

        def evaluate() -> tuple[float, float]:
            full.append(self.evaluate(self.alignment, sets=sets))
            return (full[0].hs, full[0].over_refusal)

        hs, over_refusal = self.kept.get(key, evaluate)
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
        """Run the strategy's registered method on this job's adapters, masks and data."""
        self.check()
        inputs = MethodInputs(
            self.ft, self.alignment, self.masks, self.model, self.tok, self.sets, self.should_stop, self.scratch
        )
        return apply(s, inputs)

    def scratch(self) -> str:
        """A temporary directory for this realignment (repair runs), removed by :meth:`close`."""
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="keel-realign-")
        return self._scratch.name

    def close(self) -> None:
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None

    def evaluate(self, adapter: Adapter | None, limits: Limits | None = None, sets: EvalSets | None = None) -> Scores:
        """Full scores (on ``sets``, by default the selection split); with ``limits`` possibly partial, stopped
        once a check is proven failed."""
        self.check()
        scores = score(self.model, self.tok, adapter, sets or self.sets, limits)
        self.check()
        return scores
