"""python -m testbed build [--seed N] [--out DIR] [--force]"""
from __future__ import annotations

import argparse
import json
import time

from testbed import build_testbed


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m testbed")
    ap.add_argument("action", choices=["build"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    started = time.monotonic()
    tb = build_testbed(args.out, seed=args.seed, force=args.force)
    print(tb.root)
    print(json.dumps({"timings": tb.manifest["timings"], "scores": tb.manifest["scores"],
                      "wall_s": round(time.monotonic() - started, 1)}, indent=2))


if __name__ == "__main__":
    main()
