"""CPU seconds of one realignment stage on a fixed fine-tuned adapter, for comparing checkouts side by side.

Run it with the checkout to measure first on ``PYTHONPATH`` (the script uses only APIs every version since
issue #9 has), on an adapter and masks an earlier ``bench.realign --out DIR`` left behind::

    python -m bench.realign --p 0.1 --methods auto --out /tmp/rb              # trains the attack adapter, masks
    PYTHONPATH=/path/to/old/checkout python bench/realign_stage.py auto --from /tmp/rb
    PYTHONPATH=. python bench/realign_stage.py auto --from /tmp/rb
    PYTHONPATH=. python bench/realign_stage.py auto --from /tmp/rb --cache-dir /tmp/c   # twice: the 2nd reads it

Prints one JSON line: process CPU seconds and wall seconds of ``realign_job`` (one intra-op thread), the
decision, the chosen strategy, the scores after, and each trial's pass/fail.
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("method")
    ap.add_argument("--from", dest="src", required=True, help="a bench.realign --out DIR (p0.1/attack, masks)")
    ap.add_argument("--p", type=float, default=0.1)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--out", default="/tmp/keel-realign-stage")
    ap.add_argument("--cache-dir", help="keep reference scores across runs (versions that support it)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from bench.realign import eval_sets
    from testbed import build_testbed
    from testbed.attack import DEFAULT_ATTACK, customer_dataset
    from tuning.safety import realign_job

    tb = build_testbed(seed=0)
    sets = eval_sets(tb, args.n, customer_dataset(tb, DEFAULT_ATTACK["n"], args.p, 0))
    extra = {"cache_dir": args.cache_dir} if args.cache_dir else {}
    cpu, wall = time.process_time(), time.monotonic()
    rep = realign_job(
        str(tb.base),
        str(tb.alignment_adapter),
        f"{args.src}/p{args.p}/attack/adapter",
        f"{args.src}/masks",
        f"{args.out}/{args.method}",
        method=args.method,
        eval_sets=sets,
        device="cpu",
        seed=0,
        **extra,
    )
    trials = [(t["strategy"], all(v for v in t["checks"].values() if v is not None)) for t in rep.trials]
    result = {
        "method": args.method,
        "cpu_s": round(time.process_time() - cpu, 2),
        "wall_s": round(time.monotonic() - wall, 2),
        "passed": rep.passed,
        "strength": (rep.strength or {}).get("strategy"),
        "after": rep.after,
        "trials": trials,
        "cpu_parts": rep.timings.get("cpu_s"),
        "trial_parts": [{k: v for k, v in t.items() if k.endswith("cpu_s")} for t in rep.trials],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
