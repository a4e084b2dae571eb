"""`keel` command line: serve (embedded default), demo, worker, migrate, testbed, admin."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

from core.config import get_settings


def _worker_cmd() -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "-P", "solo", "-c", "1",
            "-Q", get_settings().queue, "--loglevel=INFO", "-n", f"keel-{os.getpid()}@%h"]


def start_worker(log_path: str | None = None) -> subprocess.Popen:
    out = open(log_path, "ab") if log_path else None  # noqa: SIM115
    return subprocess.Popen(_worker_cmd(), stdout=out, stderr=subprocess.STDOUT if out else None,
                            env={**os.environ, "C_FORCE_ROOT": "1"})


def prepare(testbed: bool = True) -> dict[str, str]:
    from core.bootstrap import dev_keys, migrate, register_testbed

    migrate()
    keys = dev_keys()
    if testbed:
        from testbed import build_testbed

        register_testbed(build_testbed(get_settings().testbed_dir))
    return keys


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    keys = prepare(testbed=not args.no_testbed)
    s = get_settings()
    worker = None if args.no_worker else start_worker(str(s.data_dir / "worker.log"))
    print(f"Keel {'embedded' if s.embedded else 'production'} mode: database {s.db_url}, broker {s.celery_broker}")
    print(f"API:        http://{args.host}:{args.port}/v1   (docs at /docs)")
    print(f"Admin key:  {keys['admin']}\nTenant key: {keys['user']}")
    if worker:
        print(f"Worker:     pid {worker.pid}, log {s.data_dir / 'worker.log'}")
    try:
        uvicorn.run("api.main:app", host=args.host, port=args.port, log_level="info")
    finally:
        if worker:
            worker.terminate()
            worker.wait(timeout=30)


def cmd_worker(_: argparse.Namespace) -> None:
    os.environ.setdefault("C_FORCE_ROOT", "1")
    os.execv(sys.executable, _worker_cmd())


def cmd_migrate(_: argparse.Namespace) -> None:
    from core.bootstrap import migrate

    migrate()
    print("database is at head")


def cmd_testbed(args: argparse.Namespace) -> None:
    from testbed import build_testbed

    tb = build_testbed(args.out or get_settings().testbed_dir, seed=args.seed, force=args.force)
    print(tb.root)
    if args.register:
        from core.bootstrap import migrate, register_testbed

        migrate()
        print(f"registered base model {register_testbed(tb)}")


def cmd_create_tenant(args: argparse.Namespace) -> None:
    from core.auth import create_tenant
    from core.bootstrap import migrate
    from core.db import session_scope

    migrate()
    with session_scope() as s:
        tenant, key = create_tenant(s, args.name, role=args.role)
        print(f"tenant {tenant.id} ({args.role}) api key: {key}")


def cmd_demo(args: argparse.Namespace) -> None:
    from core.demo import run_demo

    sys.exit(run_demo(port=args.port, p=args.poison, n=args.n))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="keel", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("serve", help="run API + worker (embedded default unless KEEL_DATABASE_URL/BROKER_URL set)")
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=8000)
    sp.add_argument("--no-worker", action="store_true", help="do not start a worker process")
    sp.add_argument("--no-testbed", action="store_true", help="do not build/register the offline testbed")
    sp.set_defaults(fn=cmd_serve)
    sub.add_parser("worker", help="run one Celery worker (one per GPU)").set_defaults(fn=cmd_worker)
    sub.add_parser("migrate", help="alembic upgrade head").set_defaults(fn=cmd_migrate)
    tp = sub.add_parser("testbed", help="build (cached) the offline safety testbed")
    tp.add_argument("action", choices=["build"])
    tp.add_argument("--seed", type=int, default=0)
    tp.add_argument("--out", default=None)
    tp.add_argument("--force", action="store_true")
    tp.add_argument("--register", action="store_true", help="also register it as base model 'keel-testbed'")
    tp.set_defaults(fn=cmd_testbed)
    cp = sub.add_parser("create-tenant", help="create a tenant and print its API key")
    cp.add_argument("name")
    cp.add_argument("--role", choices=["user", "admin"], default="user")
    cp.set_defaults(fn=cmd_create_tenant)
    dp = sub.add_parser("demo", help="embedded service + a scripted poisoned job end to end")
    dp.add_argument("--port", type=int, default=8765)
    dp.add_argument("--poison", type=float, default=0.1)
    dp.add_argument("--n", type=int, default=0, help="examples (0 = testbed default)")
    dp.set_defaults(fn=cmd_demo)
    args = ap.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
