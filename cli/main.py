"""Keel: fine-tuning as a service whose LoRA adapters come back safety-realigned."""

from __future__ import annotations

import argparse
import os
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

from cli.supervisor import Child, Supervisor, port_in_use
from core.config import get_settings, redact_url
from testbed import cli as testbed_cli
from tuning.safety.registry import METHOD_NAMES

__version__ = version("keel")


def worker_cmd(name: str | None = None) -> list[str]:
    """The Celery command of one worker (one job at a time: one per GPU)."""
    node = name or os.environ.get("KEEL_WORKER_NAME") or f"keel-{os.getpid()}"
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.celery_app",
        "worker",
        "-P",
        "solo",
        "-c",
        "1",
        "-Q",
        get_settings().queue,
        "--loglevel=INFO",
        "-n",
        node if "@" in node else f"{node}@%h",
    ]


def api_cmd(host: str, port: int, access_log: bool = False) -> list[str]:
    """The API server's command (open event streams end at once on SIGTERM; 5 s for other requests)."""
    cmd = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", host, "--port", str(port)]
    cmd += ["--log-level", "info", "--timeout-graceful-shutdown", "5"]
    return cmd + ([] if access_log else ["--no-access-log"])


def prepare(testbed: bool = True) -> dict[str, str]:
    from core.bootstrap import dev_keys, migrate, register_testbed

    migrate()
    keys = dev_keys()
    if testbed:
        from testbed import build_testbed

        register_testbed(build_testbed(get_settings().testbed_dir))
    return keys


def _banner(args: argparse.Namespace, keys: dict[str, str], sup: Supervisor) -> None:
    s = get_settings()
    print(
        f"Keel {__version__} {'embedded' if s.embedded else 'production'} mode: database {redact_url(s.db_url)}, "
        f"broker {redact_url(s.celery_broker)}"
    )
    print(f"API:        http://{args.host}:{args.port}/v1   (docs at /docs)")
    print(f"Admin key:  {keys['admin']}\nTenant key: {keys['user']}")
    for c in sup.children:
        extra = f", log {s.data_dir.resolve() / 'worker.log'}" if c.name == "worker" else ""
        print(f"{c.name.capitalize() + ':':<11} pid {c.proc.pid}{extra}")
    print("A worker that dies is restarted; its job is retried from its last checkpoint.")
    print("Stop with Ctrl-C or SIGTERM (a running job is requeued and resumes from its last checkpoint).", flush=True)


def _worker_died(child: Child, code: int) -> None:
    """A worker killed by a signal leaves its job's lease to expire: note how it died on that job (the evidence
    for ``out_of_memory``) and expire the lease now, so the restarted worker's reaper retries it at once."""
    if child.name != "worker" or code >= 0:
        return
    import signal as signals
    import socket

    from core.db import session_scope
    from core.jobs import lifecycle

    try:
        how = signals.Signals(-code).name
    except ValueError:
        how = f"signal {-code}"
    with session_scope() as s:
        jobs = lifecycle.worker_killed(s, f"{socket.gethostname()}:{child.proc.pid}:", how)
    if jobs:
        print(f"keel: the worker was running {', '.join(jobs)}; it will be retried", flush=True)


def cmd_serve(args: argparse.Namespace) -> None:
    if port_in_use(args.host, args.port):
        sys.exit(f"keel: {args.host}:{args.port} is already in use; pick another --port")
    keys = prepare(testbed=not args.no_testbed)
    s, env = get_settings(), {**os.environ, "C_FORCE_ROOT": "1"}
    sup = Supervisor(on_exit=_worker_died)
    sup.start("api", api_cmd(args.host, args.port, args.access_log), env, grace_s=15)
    if not args.no_worker:
        log = open(s.data_dir / "worker.log", "ab")  # noqa: SIM115 (kept open for the child's life)
        sup.start("worker", worker_cmd(), env, grace_s=args.worker_grace, log=log, restart=True)
    _banner(args, keys, sup)
    sys.exit(sup.run())


def cmd_worker(_: argparse.Namespace) -> None:
    os.environ.setdefault("C_FORCE_ROOT", "1")
    os.execv(sys.executable, worker_cmd())


def cmd_migrate(_: argparse.Namespace) -> None:
    from core.bootstrap import migrate

    migrate()
    print("database is at head")


def cmd_testbed(args: argparse.Namespace) -> None:
    if args.out is None and get_settings().testbed_dir is not None:
        args.out = str(get_settings().testbed_dir)
    tb = testbed_cli.run(args)
    if args.register:
        from core.bootstrap import migrate, register_testbed

        migrate()
        print(f"registered base model {register_testbed(tb)}")


def cmd_bootstrap(args: argparse.Namespace) -> None:
    from core.bootstrap import ensure_admin_key, migrate, register_prepared_model, register_testbed

    migrate()
    if args.admin_key_file:
        try:
            ensure_admin_key(Path(args.admin_key_file).read_text().strip())
        except ValueError as exc:
            sys.exit(f"keel bootstrap: {exc}")
        print("admin key from", args.admin_key_file, "is present")
    if args.register_testbed:
        from testbed import build_testbed

        print(f"registered base model {register_testbed(build_testbed(get_settings().testbed_dir))}")
    models = args.register_model or []
    if len(args.path or []) != len(models):
        sys.exit("keel bootstrap: give one --path per --register-model")
    for i, (model_id, path) in enumerate(zip(models, args.path or [], strict=True)):
        adapter = _nth(args.alignment_adapter, i)
        register_prepared_model(model_id, path, adapter, _nth(args.safety_data, i))
        print(f"registered base model {model_id}")


def _nth(values: list[str] | None, i: int) -> str | None:
    return values[i] if values and i < len(values) else None


def cmd_create_tenant(args: argparse.Namespace) -> None:
    from core.bootstrap import migrate
    from core.db import session_scope
    from core.tenants.service import create_tenant

    migrate()
    with session_scope() as s:
        tenant, key = create_tenant(s, args.name, role=args.role)
        print(f"tenant {tenant.id} ({args.role}) api key: {key}")


def cmd_janitor(args: argparse.Namespace) -> None:
    from core.db import session_scope
    from core.janitor import sweep

    with session_scope() as s:
        keys = sweep(s, args.grace_s, dry_run=args.dry_run)
    for key in keys:
        print(key)
    print(f"{'would remove' if args.dry_run else 'removed'} {len(keys)} orphaned store object(s)")


def cmd_demo(args: argparse.Namespace) -> None:
    from cli.demo import run_demo

    sys.exit(run_demo(port=args.port, p=args.poison, n=args.n, model=args.model, realign=args.realign))


def _parser(sub: Any, name: str, help_: str, fn: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        name, help=help_, description=help_, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.set_defaults(fn=fn)
    return p


def _add_serve(sub: Any) -> None:
    sp = _parser(
        sub,
        "serve",
        "run the API and a worker (embedded default unless KEEL_DATABASE_URL / KEEL_BROKER_URL are set)",
        cmd_serve,
    )
    sp.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    sp.add_argument("--port", type=int, default=8000, help="port to listen on")
    sp.add_argument("--no-worker", action="store_true", help="do not start a worker process")
    sp.add_argument("--no-testbed", action="store_true", help="do not build/register the offline testbed")
    sp.add_argument("--access-log", action="store_true", help="log every HTTP request")
    sp.add_argument(
        "--worker-grace",
        type=float,
        default=60.0,
        help="seconds the worker gets to requeue its job and exit on shutdown",
    )


def _add_bootstrap(sub: Any) -> None:
    bp = _parser(sub, "bootstrap", "production first run: migrate, admin key from a secret, base models", cmd_bootstrap)
    bp.add_argument("--admin-key-file", help="file holding the admin API key to ensure (e.g. a compose secret)")
    bp.add_argument("--register-testbed", action="store_true", help="build (cached) and register the testbed")
    bp.add_argument("--register-model", action="append", metavar="ID", help="register a base model (repeatable)")
    bp.add_argument("--path", action="append", metavar="DIR", help="its model directory (one per --register-model)")
    bp.add_argument(
        "--alignment-adapter",
        action="append",
        metavar="DIR",
        help="its alignment LoRA directory (optional; in --register-model order)",
    )
    bp.add_argument(
        "--safety-data",
        action="append",
        metavar="DIR",
        help="its safety data directory with "
        "safety_corpus.jsonl, harmful_eval.jsonl, benign_eval.jsonl (optional; in order)",
    )


def _add_testbed(sub: Any) -> None:
    tp = testbed_cli.add_subparser(sub)
    tp.add_argument("--register", action="store_true", help="also register it as base model 'keel-testbed'")
    tp.set_defaults(fn=cmd_testbed)


def cmd_models(args: argparse.Namespace) -> None:
    """Import a GGUF (default: the SmolLM2 wheel's) or build its aligned base; optionally register it."""
    from core.bootstrap import migrate, register_prepared_model, register_testbed

    if args.action == "import-gguf":
        from tuning import gguf

        out = gguf.convert_gguf(args.gguf or gguf.smollm2_gguf(), force=args.force)
        print(out)
        if args.register:
            migrate()
            print(f"registered base model {register_prepared_model(args.id, str(out), None, None)}")
        return
    from realmodel.build import build_real_model

    rm = build_real_model(args.gguf, seed=args.seed, force=args.force)
    print(rm.root)
    if args.register:
        migrate()
        print(f"registered base model {register_testbed(rm, args.id)}")


def _add_models(sub: Any) -> None:
    mp = _parser(
        sub,
        "models",
        "real base models from GGUF files: convert (cached by content hash) or build the "
        "aligned base with its safety data (import-gguf / build-aligned)",
        cmd_models,
    )
    mp.add_argument("action", choices=["import-gguf", "build-aligned"], help="what to do")
    mp.add_argument("--gguf", help="a .gguf file (default: SmolLM2-135M-Instruct from the `smollm2` extra)")
    mp.add_argument("--id", default="smollm2-135m-instruct", help="base model id to register it under")
    mp.add_argument("--seed", type=int, default=0, help="build-aligned: corpus and training seed")
    mp.add_argument("--force", action="store_true", help="rebuild even when cached")
    mp.add_argument("--register", action="store_true", help="also register it as a base model")


def _add_small(sub: Any) -> None:
    _parser(sub, "worker", "run one Celery worker (one per GPU; name it with KEEL_WORKER_NAME)", cmd_worker)
    _parser(sub, "migrate", "upgrade the database schema to the newest revision", cmd_migrate)
    cp = _parser(sub, "create-tenant", "create a tenant and print its API key", cmd_create_tenant)
    cp.add_argument("name", help="tenant name")
    cp.add_argument("--role", choices=["user", "admin"], default="user", help="role of its first key")
    jp = _parser(
        sub, "janitor", "remove store objects no row references (left by crashes), past a grace age", cmd_janitor
    )
    jp.add_argument("--grace-s", type=float, default=None, help="minimum age in seconds (default KEEL_JANITOR_GRACE_S)")
    jp.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    dp = _parser(sub, "demo", "embedded service + a scripted poisoned fine-tuning job, end to end", cmd_demo)
    dp.add_argument("--port", type=int, default=8765, help="port of the demo's own service")
    dp.add_argument("--poison", type=float, default=0.1, help="fraction of harmful examples in the dataset")
    dp.add_argument("--n", type=int, default=0, help="examples in the dataset (0 = the model's default)")
    dp.add_argument(
        "--model",
        default="keel-testbed",
        choices=["keel-testbed", "smollm2-135m-instruct"],
        help="base model: the offline testbed, or SmolLM2 (needs the smollm2 extra; builds its aligned base once)",
    )
    dp.add_argument("--realign", default="auto", choices=METHOD_NAMES, help="the job's safety.realign method")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="keel", description=__doc__)
    ap.add_argument("--version", action="version", version=f"keel {__version__}")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    _add_serve(sub)
    _add_bootstrap(sub)
    _add_testbed(sub)
    _add_models(sub)
    _add_small(sub)
    args = ap.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
