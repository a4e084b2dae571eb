"""The testbed's command line, one implementation for ``python -m testbed build`` and ``keel testbed build``.

``keel`` mounts it with :func:`add_subparser` (and may add its own options, e.g. ``--register``, to the
returned parser); ``python -m testbed`` runs :func:`main`.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from testbed.build import Testbed


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "action",
        choices=["build", "example"],
        help="build: the cached testbed; example: write a customer dataset for it (JSONL)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="cache root (default: KEEL_TESTBED_DIR or ~/.cache/keel/testbed)")
    parser.add_argument("--force", action="store_true", help="rebuild even when cached")
    ex = parser.add_argument_group("example")
    ex.add_argument("--n", type=int, default=400, help="training rows of the customer's sentiment task")
    ex.add_argument("--poison", type=float, default=0.0, help="fraction of harmful rows with compliant answers")
    ex.add_argument("--train", default="train.jsonl", help="where to write the training file")
    ex.add_argument("--validation", default="validation.jsonl", help="where to write the validation file")
    parser.set_defaults(fn=run)
    return parser


def add_subparser(subparsers: argparse._SubParsersAction, name: str = "testbed") -> argparse.ArgumentParser:
    """A ``name`` subcommand whose parsed namespace has ``fn=run``."""
    return add_arguments(subparsers.add_parser(name, help="build (cached) the offline safety testbed"))


def run(args: argparse.Namespace) -> Testbed:
    """Build (or load from the cache) the testbed; print its directory, timings and scores."""
    from testbed.build import build_testbed  # torch: imported only when a build is asked for

    started = time.monotonic()
    tb = build_testbed(args.out, seed=args.seed, force=args.force)
    if args.action == "example":
        _write_example(tb, args)
        return tb
    print(tb.root)
    summary = {
        "timings": tb.manifest["timings"],
        "scores": tb.manifest["scores"],
        "wall_s": round(time.monotonic() - started, 1),
    }
    print(json.dumps(summary, indent=2))
    return tb


def _write_example(tb: Testbed, args: argparse.Namespace) -> None:
    from testbed.attack import customer_dataset, validation_dataset

    for path, rows in (
        (args.train, customer_dataset(tb, args.n, args.poison, args.seed)),
        (args.validation, validation_dataset(tb, args.seed)),
    ):
        with open(path, "w") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)
        print(f"wrote {len(rows)} rows to {path}")


def main(argv: Sequence[str] | None = None) -> Testbed:
    args = add_arguments(argparse.ArgumentParser(prog="python -m testbed")).parse_args(argv)
    return args.fn(args)
