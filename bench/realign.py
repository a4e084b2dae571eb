"""Realignment benchmark on the offline testbed (issues #3 and #4).

For each poison ratio p: attack (fine-tune continuing the alignment LoRA on (1-p)n task + pn harmful
examples), then realign with each method and score on held-out prompts:
rows aligned, fine-tuned (no defense), SafeLoRA, NLSR (as published), FGSN, Keel auto;
columns HS, FA, over-refusal, realignment wall time and its ratio to training time, mask time.

    python -m bench.realign --p 0.05 0.1 0.2 --seed 0 --out bench/out
    python -m bench.realign --attack-only      # issue #3's table: aligned vs fine-tuned at each p
    python -m bench.realign --p 0.1 --parts    # also seconds per part of each row's realignment stage
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from bench.plots import plot_by_poison_ratio
from testbed import Testbed, build_testbed
from testbed.attack import DEFAULT_ATTACK, customer_dataset, run_attack, validation_dataset
from testbed.corpus import LABELS
from tuning.model_cache import ModelCache
from tuning.safety import EvalSets, compute_safety_masks, realign_job
from tuning.safety.registry import METHOD_NAMES

WARM = ModelCache(2**34)  # --warm: the base model, masks and reference scores stay loaded across rows
ROW_LABELS = {"safelora": "SafeLoRA", "nlsr": "NLSR (published)", "fgsn": "FGSN", "auto": "Keel auto"}
DEFAULT = ("safelora", "nlsr", "fgsn", "auto")  # the rows run by default; any registered method may be asked for


def eval_sets(tb: Testbed, n: int, replay: list[dict] | None = None) -> EvalSets:
    """Held-out harmful/benign prompts and task examples; the customer's validation split for utility and
    (a sample of) their training rows for replay."""
    return EvalSets(
        harmful_prompts=[r["prompt"] for r in tb.load_split("harmful_eval")[:n]],
        benign_prompts=[r["prompt"] for r in tb.load_split("benign_eval")[:n]],
        utility_examples=[r["messages"] for r in validation_dataset(tb)],
        task_examples=tb.load_split("task_eval")[:n],
        labels=list(LABELS),
        replay_examples=[r["messages"] for r in (replay or [])][:256],
        safety_corpus=tb.load_split("safety_corpus"),
    )


def run_p(tb: Testbed, p: float, args: argparse.Namespace, masks_dir: str, mask_s: float) -> list[dict]:
    out = Path(args.out) / f"p{p}"
    t = time.monotonic()
    attack = Path(args.reuse_attack) / f"p{p}" / "attack" if args.reuse_attack else out / "attack"
    if args.reuse_attack:  # the adapter an earlier run trained (training is seeded: the same adapter)
        adapter_dir = str(attack / "adapter")
        train_s = json.loads((attack / "train.json").read_text())["train_s"] if (attack / "train.json").exists() else 0
    else:
        adapter_dir = run_attack(tb, p, str(attack), seed=args.seed).adapter_dir
        train_s = time.monotonic() - t
        (attack / "train.json").write_text(json.dumps({"train_s": train_s}))
    rows = []
    methods = [] if args.attack_only else [(ROW_LABELS.get(m, m), m) for m in args.methods]
    for label, method in [("fine-tuned", "none")] + methods:
        t = time.monotonic()
        replay = customer_dataset(tb, DEFAULT_ATTACK["n"], p, args.seed)
        rep = realign_job(
            str(tb.base),
            str(tb.alignment_adapter),
            adapter_dir,
            masks_dir,
            str(out / method),
            method=method,
            eval_sets=eval_sets(tb, args.n, replay),
            device="cpu",
            seed=args.seed,
            base=WARM.get(str(tb.base), "cpu") if args.warm else None,
            cache_dir=args.disk_cache,
        )
        wall = time.monotonic() - t
        if not rows:
            rows.append({"row": "aligned", **rep.reference, "realign_s": None, "ratio": None})
            rows[0].update(eval_aligned_fa(tb, args))
        rows.append(
            {
                "row": label,
                **rep.after,
                "realign_s": round(wall, 1),
                "ratio": round(wall / train_s, 2) if train_s else None,
                "passed": rep.passed,
                "strength": rep.strength,
                "trials": [(t["strategy"], all(t["checks"].values())) for t in rep.trials],
                "parts": rep.timings.get("parts", {}),
                "cpu_s": rep.timings.get("cpu_s", {}),
            }
        )
    for r in rows:
        r.update(p=p, train_s=round(train_s, 1), mask_s=round(mask_s, 1))
    return rows


def eval_aligned_fa(tb: Testbed, args: argparse.Namespace) -> dict:
    from tuning.evaluate import classification_accuracy
    from tuning.modeling import load_model

    model, tok = load_model(str(tb.base), device="cpu", adapter=str(tb.alignment_adapter))
    return {
        "fa": round(classification_accuracy(model, tok, tb.load_split("task_eval")[: args.n], list(LABELS))["score"], 2)
    }


def print_table(rows: list[dict]) -> None:
    print(f"\np = {rows[0]['p']}  (train {rows[0]['train_s']} s, masks {rows[0]['mask_s']} s)")
    print(f"{'row':<18}{'HS':>7}{'FA':>7}{'over-ref':>10}{'realign s':>11}{'ratio':>7}  strength")
    for r in rows:
        rs = "" if r["realign_s"] is None else r["realign_s"]
        ratio = "" if r["ratio"] is None else r["ratio"]
        print(
            f"{r['row']:<18}{r['hs']:>7.1f}{r['fa']:>7.1f}{r['over_refusal']:>10.1f}{rs!s:>11}{ratio!s:>7}  "
            f"{(r.get('strength') or {}).get('strategy', '')}"
        )


def print_parts(rows: list[dict]) -> None:
    """Seconds per part of each row's realignment stage (trials: method + evaluation seconds)."""
    print(f"\nrealignment stage, seconds per part (p = {rows[0]['p']})")
    for r in rows:
        parts = dict(r.get("parts") or {})
        if not parts:
            continue
        trials = parts.pop("trials", [])
        fixed = "  ".join(f"{k.removesuffix('_s')} {v:.2f}" for k, v in parts.items())
        print(f"{r['row']:<18} total {r['realign_s']}  {fixed}")
        for t in trials:
            extra = f" screened {t['screened']}" if t.get("screened") else ""
            print(f"{'':<20}trial {t['strategy']}: method {t['method_s']:.2f} eval {t['eval_s']:.2f}{extra}")
        cpu = r.get("cpu_s") or {}
        print(f"{'':<20}CPU s: " + "  ".join(f"{k.removesuffix('_s')} {v:.2f}" for k, v in cpu.items()))
        for t in trials:
            if "method_cpu_s" in t:
                print(f"{'':<20}trial {t['strategy']}: CPU method {t['method_cpu_s']:.2f} eval {t['eval_cpu_s']:.2f}")
        print(f"{'':<20}decisions: passed={r['passed']} trials={r['trials']}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--p", type=float, nargs="+", default=[0.05, 0.1, 0.2])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=200, help="eval prompts per set")
    ap.add_argument("--out", default="bench/out")
    ap.add_argument("--attack-only", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    names = [m for m in METHOD_NAMES if m != "none"]
    ap.add_argument("--methods", nargs="+", default=list(DEFAULT), choices=names, help="rows besides fine-tuned")
    ap.add_argument("--parts", action="store_true", help="print seconds per part of each realignment stage")
    ap.add_argument("--reuse-attack", metavar="OUT", help="use the attack adapters an earlier run left in OUT")
    ap.add_argument("--masks", metavar="DIR", help="use these safety masks instead of computing them")
    ap.add_argument("--warm", action="store_true", help="rows share one loaded model, as jobs on a warm worker do")
    ap.add_argument("--disk-cache", metavar="DIR", help="keep reference scores and the screening direction here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tb = build_testbed(seed=args.seed)
    masks_dir = args.masks or str(Path(args.out) / "masks")
    t = time.monotonic()
    if not args.masks:
        compute_safety_masks(
            str(tb.base), str(tb.alignment_adapter), tb.load_split("safety_corpus"), "all", {}, masks_dir, device="cpu"
        )
    mask_s = time.monotonic() - t
    all_rows = []
    for p in args.p:
        rows = run_p(tb, p, args, masks_dir, mask_s)
        print_table(rows)
        if args.parts:
            print_parts(rows)
        all_rows += rows
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "realign.json").write_text(json.dumps(all_rows, indent=2))
    plot(all_rows, Path(args.out) / "realign.png")


def plot(rows: list[dict], path: Path) -> None:
    plot_by_poison_ratio(rows, path)


if __name__ == "__main__":
    main()
