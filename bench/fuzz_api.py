"""Schemathesis against a throwaway Keel API on loopback, once with a tenant key and once with an admin key.

Issue #8's measurement (every check, >= 5,000 cases per key) and the CI run (bounded, fails on any 5xx):

    nice -n 10 python bench/fuzz_api.py --max-examples 200 --checks all          # by hand, a few minutes
    python bench/fuzz_api.py --max-examples 10 --checks not_a_server_error       # CI: exit 1 on any 5xx

Prints schemathesis' own summary per key; the JSON reports land in --report-dir. Exit status: 1 when either
run found a failure.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._service import service


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-examples", type=int, default=25, help="cases per operation and phase")
    ap.add_argument("--checks", default="all")
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--database", choices=["sqlite", "postgres"], default="postgres")
    ap.add_argument("--workers", default="1", help="schemathesis workers (concurrent requests)")
    ap.add_argument("--phases", default="examples,coverage,fuzzing,stateful")
    ap.add_argument("--keys", default="tenant,admin")
    ap.add_argument("--report-dir", default="bench/out/fuzz")
    args = ap.parse_args()
    st = str(Path(sys.executable).with_name("schemathesis"))
    failed = False
    with service(args.database) as svc:
        print(f"API {svc.url}  file {svc.file_id}  job {svc.job_id}", flush=True)
        for name in args.keys.split(","):
            key = svc.tenant if name == "tenant" else svc.admin
            out = Path(args.report_dir) / name
            out.mkdir(parents=True, exist_ok=True)
            cmd = [
                st, "run", f"{svc.url}/openapi.json",
                "--checks", args.checks,
                "--max-examples", str(args.max_examples),
                "--seed", str(args.seed),
                "--workers", args.workers,
                "--phases", args.phases,
                "-H", f"Authorization: Bearer {key}",
                "--report", "junit",
                "--report-junit-path", str(out / "junit.xml"),
                "--no-color",
                "--output-truncate", "true",
                "--suppress-health-check", "all",
                "--generation-allow-x00", "false",  # NUL anywhere is refused with 400, by design (documented)
            ]  # fmt: skip
            print(f"\n=== schemathesis with the {name} key ===", flush=True)
            rc = subprocess.call(cmd, env={**os.environ, "SCHEMATHESIS_HOOKS": ""})
            failed |= rc != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
