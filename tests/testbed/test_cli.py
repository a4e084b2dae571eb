"""One testbed command line: ``python -m testbed`` and ``keel testbed`` share testbed.cli."""

from __future__ import annotations

import argparse

from testbed import cli


def test_subcommand_and_main_parse_the_same_options():
    root = argparse.ArgumentParser(prog="keel")
    sub = root.add_subparsers(dest="cmd", required=True)
    cli.add_subparser(sub).add_argument("--register", action="store_true")
    args = root.parse_args(["testbed", "build", "--seed", "3", "--out", "/tmp/x", "--force", "--register"])
    assert (args.action, args.seed, args.out, args.force, args.register, args.fn) == (
        "build",
        3,
        "/tmp/x",
        True,
        True,
        cli.run,
    )
    plain = cli.add_arguments(argparse.ArgumentParser()).parse_args(["build"])
    assert (plain.seed, plain.out, plain.force, plain.fn) == (0, None, False, cli.run)


def test_build_threads_follow_the_env_else_the_idle_cores(monkeypatch):
    from testbed import build

    monkeypatch.setenv("KEEL_TESTBED_THREADS", "3")
    assert build.build_threads() == 3
    monkeypatch.delenv("KEEL_TESTBED_THREADS")
    monkeypatch.setattr(build.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    for busy, want in ((0.0, 2), (0.4, 2), (1.0, 1), (6.0, 1)):
        monkeypatch.setattr(build, "_busy", lambda busy=busy: busy)
        assert build.build_threads() == want, busy
    assert build._busy() >= 0  # /proc/loadavg here, or the load average
