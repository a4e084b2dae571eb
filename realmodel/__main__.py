"""``python -m realmodel import-gguf [--gguf PATH]`` converts (cached) and prints the HF directory;
``python -m realmodel build [--seed N] [--force]`` builds the aligned real-model base and prints its manifest."""

from __future__ import annotations

import argparse
import json
import logging


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m realmodel")
    sub = ap.add_subparsers(dest="cmd", required=True)
    imp = sub.add_parser("import-gguf", help="convert a GGUF (default: the SmolLM2 wheel's) to a cached HF dir")
    imp.add_argument("--gguf")
    imp.add_argument("--force", action="store_true")
    b = sub.add_parser("build", help="self-distill + alignment LoRA + scores, cached")
    b.add_argument("--gguf")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--force", action="store_true")
    b.add_argument("--no-base-score", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.cmd == "import-gguf":
        from tuning import gguf

        out = gguf.convert_gguf(args.gguf or gguf.smollm2_gguf(), force=args.force)
        print(json.dumps({"model_id": gguf.SMOLLM2_MODEL_ID, "path": str(out), **gguf.manifest(out)}, indent=2))
        return
    from realmodel.build import build_real_model

    rm = build_real_model(
        args.gguf, seed=args.seed, force=args.force, score_base=not args.no_base_score, log=lambda m: logging.info(m)
    )
    print(json.dumps({"root": str(rm.root), **{k: v for k, v in rm.manifest.items() if k != "gguf"}}, indent=2))


if __name__ == "__main__":
    main()
