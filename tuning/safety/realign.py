"""The realignment stage of a job: evaluate the fine-tuned adapter, realign it (one method or the adaptive
controller), evaluate again, write the chosen adapter and a JSON-serialisable report."""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from tuning.adapters import Adapter, read_adapter, write_adapter
from tuning.safety import activations as act
from tuning.safety import methods
from tuning.safety.common import leaf, short
from tuning.safety.controller import Scores, Strategy, Tolerances, auto_realign, checks
from tuning.safety.keel import keel
from tuning.safety.masks import load_masks
from tuning.safety.repair import repair, repair_data
from tuning.safety.scoring import EvalSets, applied, score, screen

KEEL_LADDER = (1, 2, 4, 8, 16, 32, 64)
REPAIR_LADDER = (("neurons", 1, 2e-3), ("all", 1, 2e-3), ("all", 2, 2e-3), ("all", 3, 3e-3))
METHODS = ("auto", "keel", "repair", "nlsr", "fgsn", "safelora", "none")


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

    def to_dict(self) -> dict:
        info = self.info or {}
        return {"method": self.method, "passed": self.passed, "reason": self.reason, "before": self.before,
                "after": self.after, "reference": self.reference, "strength": self.strength,
                "modules_changed": info.get("modules_changed", []), "neurons_changed": info.get("neurons_changed", 0),
                "per_module_similarity": info.get("per_module_similarity", {}), "trials": self.trials,
                "timings": self.timings, "data_moderation": self.data, "judge": "keyword (Zou et al.)"}


def strategies(method: str, seed: int) -> list[Strategy]:
    keel_ladder = [Strategy("keel", {"k": k}, f"keel(k={k})") for k in KEEL_LADDER]
    repair_ladder = [Strategy("repair", {"rows": rows, "epochs": ep, "lr": lr, "seed": seed},
                              f"sn-repair({rows}, {ep} epoch{'s' if ep > 1 else ''})") for rows, ep, lr in REPAIR_LADDER]
    table = {
        "keel": keel_ladder,
        "nlsr": [Strategy("nlsr", {"seed": seed}, "nlsr(published)")],
        "fgsn": [Strategy("fgsn", {}, "fgsn")],
        "safelora": [Strategy("safelora", {"num_proj_layers": 10}, "safelora(10 modules)")],
        "repair": repair_ladder,
        "auto": repair_ladder,
    }
    return table[method]


class _Realigner:
    """Holds the loaded model, adapters, masks and Gram matrices for one job."""

    def __init__(self, base_dir: str, alignment_dir: str, ft_dir: str, masks_dir: str | None, sets: EvalSets,
                 device: str | None) -> None:
        from tuning.modeling import load_model

        self.base_dir, self.device = base_dir, device
        self.model, self.tok = load_model(base_dir, device=device)
        self.alignment, self.ft = read_adapter(alignment_dir), read_adapter(ft_dir)
        self.masks, self.mask_meta = load_masks(masks_dir) if masks_dir else ({}, {})
        self.sets = sets
        self._grams: tuple[dict, dict] | None = None

    def grams(self) -> tuple[dict, dict]:
        """Harmful Gram (cached with the masks) and benign Gram = corpus benign + screened customer prompts."""
        if self._grams is None:
            g_h = {k.split("/", 1)[1]: v for k, v in self.masks.items() if k.startswith("keel_gram/")}
            targets = tuple(sorted({leaf(m) for m in self.ft.modules()}))
            rows = [{"prompt": p} for p in self.sets.benign_prompts]
            rows += [{"prompt": next(m["content"] for m in ex if m["role"] == "user")}
                     for ex in self.sets.utility_examples + self.sets.replay_examples
                     if any(m["role"] == "user" for m in ex)]
            with applied(self.model, self.alignment):
                stats = act.collect(self.model, self.tok, rows, targets, prompt_only=True, last_only=True)
            g_b = {k: s["gram"] / max(s["n"], 1) for k, s in stats.items()}
            self._grams = (g_h, g_b)
        return self._grams

    def apply(self, s: Strategy) -> tuple[Adapter, dict]:
        if s.method == "keel":
            g_h, g_b = self.grams()
            return keel(self.ft, self.alignment, g_h, g_b, s.params)
        if s.method == "nlsr":
            return methods.nlsr(self.ft, self.alignment, self.masks, s.params)
        if s.method == "fgsn":
            return methods.fgsn(self.ft, self.alignment, self.masks, s.params)
        if s.method == "safelora":
            return methods.safelora(self.ft, self.alignment, s.params)
        if s.method == "repair":
            return self._repair(s.params)
        raise ValueError(f"unknown realignment method {s.method!r}")

    def safety_rows(self) -> dict[str, torch.Tensor]:
        """Union of the SN-Tune and FGSN row masks, keyed by module (gate_proj shares up_proj's neurons)."""
        rows: dict[str, torch.Tensor] = {}
        for key, mask in self.masks.items():
            src, _, module = key.partition("/")
            if src in ("sn_tune", "fgsn"):
                names = [module, module.replace("up_proj", "gate_proj")] if module.endswith("up_proj") else [module]
                for name in names:
                    rows[name] = rows.get(name, torch.zeros_like(mask, dtype=torch.bool)) | mask.bool()
        return rows

    def _repair(self, params: dict) -> tuple[Adapter, dict]:
        from tuning.modeling import load_model

        rows = self.safety_rows() if params["rows"] == "neurons" else None
        data = repair_data(self.sets.safety_corpus, self.sets.replay_examples, params["seed"])
        fresh, _ = load_model(self.base_dir, device=self.device)  # training must not touch the scoring model
        out = repair(fresh, self.tok, self.ft, data, rows, params["epochs"], params["lr"], params["seed"])
        changed = {m: int(rows[short(m)].sum()) if rows is not None else int(self.ft.pair(m)[1].shape[0])
                   for m in self.ft.modules() if rows is None or short(m) in rows}
        return out, {"modules_changed": sorted(changed), "neurons_changed": sum(changed.values()),
                     "per_module_similarity": {}, "repair_examples": len(data)}

    def evaluate(self, adapter: Adapter | None) -> Scores:
        return score(self.model, self.tok, adapter, self.sets)


def _noop(msg: str, data: dict | None = None) -> None:
    pass


def realign_job(base_dir: str, alignment_adapter_dir: str | None, finetuned_adapter_dir: str,
                masks_dir: str | None, out_dir: str, method: str = "auto", eval_sets: EvalSets | None = None,
                tolerances: Tolerances | None = None, device: str | None = None, progress=None,  # noqa: ANN001
                seed: int = 0) -> RealignReport:
    """Evaluate → realign → evaluate; write the chosen adapter to out_dir. ``method='none'`` (or no alignment
    adapter) only evaluates and releases the adapter as trained."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}")
    log, tol, t0 = progress or _noop, tolerances or Tolerances(), time.monotonic()
    if alignment_adapter_dir is None:
        method = "none"
    r = _Realigner(base_dir, alignment_adapter_dir or finetuned_adapter_dir, finetuned_adapter_dir, masks_dir,
                   eval_sets, device)
    flagged = 0
    if method != "none":
        if r.sets.screen_utility:
            r.sets.utility_examples, _ = screen(r.model, r.tok, r.alignment, r.sets.utility_examples,
                                                r.sets.safety_corpus)
        r.sets.replay_examples, flagged = screen(r.model, r.tok, r.alignment, r.sets.replay_examples,
                                                 r.sets.safety_corpus)
    reference = r.evaluate(r.alignment) if alignment_adapter_dir else Scores(0.0, 0.0, 0.0)
    before = r.evaluate(r.ft)
    log(f"Safety evaluation before realignment: HS {before.hs:.1f}, utility {before.fa:.1f}, "
        f"over-refusal {before.over_refusal:.1f} (aligned base model: HS {reference.hs:.1f})", before.rounded())
    timings = {"evaluate_before_s": round(time.monotonic() - t0, 2)}
    t1 = time.monotonic()
    chosen, after, info, trials, passed, reason, strength = _decide(r, method, before, reference, tol, log, seed)
    timings["realign_s"] = round(time.monotonic() - t1, 2)
    _write_out(out_dir, chosen, finetuned_adapter_dir)
    timings["total_s"] = round(time.monotonic() - t0, 2)
    return RealignReport(method=method, passed=passed, reason=reason, before=before.rounded(),
                         after=after.rounded(), reference=reference.rounded(), strength=strength, info=info,
                         trials=trials, timings=timings,
                         data={"replay_examples_kept": len(r.sets.replay_examples), "flagged_as_harmful": flagged,
                               "utility_examples": len(r.sets.utility_examples)})


def _decide(r: _Realigner, method: str, before: Scores, reference: Scores, tol: Tolerances, log, seed: int):  # noqa: ANN001, ANN202
    if method == "none":
        return None, before, {}, [], True, "realignment disabled for this job", None
    if method in ("auto", "keel", "repair"):
        res = auto_realign(strategies(method, seed), r.apply, r.evaluate, before, reference, tol, log)
        if res.passed and res.chosen is None:
            return None, before, {}, res.trials, True, res.reason, None
        strength = {"strategy": res.chosen.label, **res.chosen.params} if res.chosen else None
        return res.adapter, res.scores or before, res.info, res.trials, res.passed, res.reason, strength
    strat = strategies(method, seed)[0]
    adapter, info = r.apply(strat)
    after = r.evaluate(adapter)
    ok = checks(after, before, reference, tol)
    reason = "all targets met" if all(ok.values()) else f"targets missed: {', '.join(k for k, v in ok.items() if not v)}"
    trial = {"strategy": strat.label, "method": strat.method, "params": strat.params, "scores": after.rounded(), "checks": ok}
    return adapter, after, info, [trial], all(ok.values()), reason, {"strategy": strat.label, **strat.params}


def _write_out(out_dir: str, adapter: Adapter | None, ft_dir: str) -> None:
    if adapter is not None:
        write_adapter(out_dir, adapter)
        return
    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ft_dir, out)


def plot_report(report: RealignReport, path: str) -> None:
    """PNG: before/after scores and, per module, similarity (NLSR) and whether it was patched."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4), gridspec_kw={"width_ratios": [1, 2]})
    keys = ["hs", "fa", "over_refusal"]
    x = torch.arange(len(keys)).float()
    ax1.bar(x - 0.2, [report.before[k] for k in keys], 0.4, label="fine-tuned")
    ax1.bar(x + 0.2, [report.after[k] for k in keys], 0.4, label="realigned")
    ax1.set_xticks(x.tolist(), ["harmfulness", "utility", "over-refusal"])
    ax1.set_ylim(0, 100)
    ax1.legend()
    ax1.set_title(f"{report.method}: {'passed' if report.passed else 'FAILED'}")
    sims = report.info.get("per_module_similarity", {})
    changed = set(report.info.get("modules_changed", []))
    mods = sorted(set(sims) | changed)
    ax2.bar(range(len(mods)), [sims.get(m, 0.0) for m in mods],
            color=["tab:red" if m in changed else "tab:gray" for m in mods])
    ax2.set_title("per-module similarity to reference (red = patched)")
    ax2.set_xticks(range(len(mods)), [m.split("layers.")[-1] for m in mods], rotation=90, fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
