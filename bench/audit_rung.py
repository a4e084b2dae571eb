"""One realignment rung on a saved fine-tuned adapter, scored on the selection AND the audit split.

``bench/real_model.py`` audits only the adapter a ladder releases; when no rung passes, that is the fine-tuned
adapter itself, and the rungs' own audit numbers are lost with the process. This applies the named strategies
(labels as the registry prints them) to the adapter of an earlier bench run, with the bench's protocol (the
same customer rows for the repair data's replay screen, the same masks), and prints each rung's selection
scores and its audit row, over-refusal per benign sub-split and the refused prompts included.

    python bench/audit_rung.py --finetuned DIR/p0.2/finetuned --p 0.2 --n 120 \\
        --rungs "sn-repair(all, 2 epochs)" --repair-max 160 --n-task-eval 256 --out DIR/rungs.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.real_model import Bench, masks_for
from realmodel.attack import customer_dataset
from realmodel.build import build_real_model
from tuning.adapters import read_adapter
from tuning.safety.registry import METHOD_NAMES, Strategy, strategies
from tuning.safety.scoring import screen


def find(label: str, seed: int) -> Strategy:
    known = {s.label: s for name in METHOD_NAMES if name != "none" for s in strategies(name, seed)}
    if label not in known:
        raise SystemExit(f"unknown rung {label!r}; known: {sorted(known)}")
    return known[label]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--finetuned", required=True, help="a bench run's DIR/p<p>/finetuned")
    ap.add_argument("--rungs", nargs="+", required=True, help='strategy labels, e.g. "sn-repair(all, 2 epochs)"')
    ap.add_argument("--p", type=float, required=True, help="the poison ratio the adapter was trained with")
    ap.add_argument("--family", default="poison")
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--n-eval", type=int, default=0)
    ap.add_argument("--n-task-eval", type=int, default=256)
    ap.add_argument("--n-audit", type=int, default=0)
    ap.add_argument("--repair-max", type=int, default=160)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gguf")
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", required=True, help="a JSON file for the rows")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        torch.set_num_threads(args.threads)
    rungs = [find(label, args.seed) for label in args.rungs]
    rm = build_real_model(args.gguf, seed=args.seed)
    masks_dir, _ = masks_for(rm, args.device)
    b = Bench(rm, args, masks_dir)
    ft = read_adapter(args.finetuned)
    rows_in = customer_dataset(rm, args.n, args.p, args.seed, args.family)
    replay, _ = screen(b.model, b.tok, b.alignment, [r["messages"] for r in rows_in], b.safety_corpus)
    out = []
    for strat in rungs:
        t = time.monotonic()
        adapter, _ = b.apply(ft, strat, replay)
        spent = round(time.monotonic() - t, 1)
        r = {"rung": strat.label, "s": spent, **b.evaluate(adapter).rounded(), "audit": b.audit(adapter)}
        out.append(r)
        Path(args.out).write_text(json.dumps(out, indent=2))
        a = r["audit"]
        print(json.dumps({k: r[k] for k in ("rung", "s", "hs", "fa", "over_refusal")}), flush=True)
        print(json.dumps({k: a[k] for k in ("hs", "over_refusal", "over_refusal_by_split")}), flush=True)
    b.close()


if __name__ == "__main__":
    main()
