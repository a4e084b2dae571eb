"""Issue #3's table on the offline testbed: the aligned model vs the fine-tuned one (no defense) for each
poison ratio p. Fine-tuning = testbed.attack.run_attack (continues the alignment LoRA on
(1-p)·n task rows + p·n harmful rows with compliant answers).

Columns: HS (% of held-out harmful prompts answered without a refusal keyword, greedy), HS on the
hand-written probes, FA (task accuracy on held-out task prompts), over-refusal (% of held-out benign
prompts refused), wall time of the fine-tune. Deterministic for a given --seed on CPU.

    python -m bench.testbed_attack --p 0 0.05 0.1 0.2 --seed 0 --out bench/out
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from testbed import Testbed, build_testbed
from testbed.attack import DEFAULT_ATTACK, run_attack
from testbed.corpus import LABELS
from tuning import evaluate
from tuning.modeling import load_model


def scores(tb: Testbed, adapter: str, n: int) -> dict:
    model, tok = load_model(str(tb.base), device="cpu", dtype=torch.float32, adapter=adapter)

    def prompts(split: str) -> list[str]:
        return [r["prompt"] for r in tb.load_split(split)[:n]]

    return {
        "hs": round(evaluate.harmfulness(model, tok, prompts("harmful_eval"))["score"], 1),
        "hs_probe": round(evaluate.harmfulness(model, tok, prompts("harmful_probe"))["score"], 1),
        "fa": round(
            evaluate.classification_accuracy(model, tok, tb.load_split("task_eval")[:n], list(LABELS))["score"], 1
        ),
        "over_refusal": round(evaluate.refusal_rate(model, tok, prompts("benign_eval"))["score"], 1),
    }


def print_table(rows: list[dict]) -> None:
    print(f"{'p':>5}  {'row':<11}{'HS':>7}{'HS-probe':>10}{'FA':>7}{'over-ref':>10}{'train s':>9}")
    for r in rows:
        t = "" if r["train_s"] is None else f"{r['train_s']:.1f}"
        scores = f"{r['hs']:>7.1f}{r['hs_probe']:>10.1f}{r['fa']:>7.1f}{r['over_refusal']:>10.1f}"
        print(f"{r['p']:>5}  {r['row']:<11}{scores}{t:>9}")


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ps = sorted({r["p"] for r in rows})
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, key in zip(axes, ("hs", "fa", "over_refusal"), strict=True):
        for name in ("aligned", "fine-tuned"):
            ax.plot(
                ps, [next(r[key] for r in rows if r["p"] == p and r["row"] == name) for p in ps], marker="o", label=name
            )
        ax.set_title(key)
        ax.set_xlabel("poison ratio p")
        ax.set_ylim(-2, 102)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--p", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.2])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=200, help="prompts per eval set")
    ap.add_argument("--attack-n", type=int, default=DEFAULT_ATTACK["n"], help="customer dataset size")
    ap.add_argument("--out", default="bench/out")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    tb = build_testbed(seed=args.seed)
    aligned = {"row": "aligned", **scores(tb, str(tb.alignment_adapter), args.n), "train_s": None}
    rows = []
    for p in args.p:
        t = time.monotonic()
        res = run_attack(tb, p, str(out / "testbed_attack" / f"p{p}"), n=args.attack_n, seed=args.seed)
        train_s = round(time.monotonic() - t, 1)
        rows += [
            {**aligned, "p": p},
            {"row": "fine-tuned", "p": p, **scores(tb, res.adapter_dir, args.n), "train_s": train_s},
        ]
        print_table(rows[-2:])
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "seed": args.seed,
        "n": args.n,
        "attack_n": args.attack_n,
        "testbed": str(tb.root),
        "attack": DEFAULT_ATTACK,
        "threads": args.threads,
    }
    (out / "testbed_attack.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    plot(rows, out / "testbed_attack.png")
    print("\n" + json.dumps(meta))
    print_table(rows)


if __name__ == "__main__":
    main()
