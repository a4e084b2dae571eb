"""One supervisor for `keel serve`: the API and the worker run as child process groups; SIGTERM, SIGINT and
SIGHUP are forwarded to both. A child started with ``restart=True`` (the worker) that exits on its own is
started again after a backoff (1 s, doubling to 30 s; back to 1 s once it has run a minute), with a line
saying why, so a dead worker never takes the API down; any other child exiting stops everything. Every exit
path waits for the children (then kills what outlives its grace period), so nothing is left orphaned."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


BACKOFF_S, MAX_BACKOFF_S, HEALTHY_RUN_S = 1.0, 30.0, 60.0


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    grace_s: float
    cmd: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    log: IO[bytes] | None = None
    restart: bool = False
    started: float = field(default_factory=time.monotonic)
    backoff_s: float = BACKOFF_S
    restart_at: float | None = None  # set while it waits out its backoff
    restarts: int = 0


def describe_exit(code: int) -> str:
    """``-9`` → "was killed by SIGKILL (...)"; ``1`` → "exited with code 1"."""
    if code >= 0:
        return f"exited with code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    hint = " (the out-of-memory killer's signal, or a kill -9)" if -code == signal.SIGKILL else ""
    return f"was killed by {name}{hint}"


OnExit = Callable[["Child", int], None]


class Supervisor:
    def __init__(self, on_exit: OnExit | None = None) -> None:
        self.children: list[Child] = []
        self._signal: int | None = None
        self._on_exit = on_exit  # told of every unexpected exit (before any restart)

    def _spawn(self, cmd: list[str], env: dict[str, str], log: IO[bytes] | None) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT if log else None, start_new_session=True
        )  # own process group: we alone decide when it stops

    def start(
        self,
        name: str,
        cmd: list[str],
        env: dict[str, str],
        grace_s: float,
        log: IO[bytes] | None = None,
        restart: bool = False,
    ) -> Child:
        child = Child(name, self._spawn(cmd, env, log), grace_s, cmd, env, log, restart)
        self.children.append(child)
        return child

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._signal = signum

    def _exited(self, child: Child) -> bool:
        """Handle ``child``'s unexpected exit; True if everything must stop."""
        code = child.proc.returncode
        why = describe_exit(code)
        with contextlib.suppress(ProcessLookupError, PermissionError):  # what it left in its group goes too
            os.killpg(child.proc.pid, signal.SIGKILL)
        if self._on_exit is not None:
            try:
                self._on_exit(child, code)
            except Exception as exc:
                print(f"keel: could not record the {child.name}'s exit: {type(exc).__name__}: {exc}", flush=True)
        if not child.restart:
            print(f"keel: {child.name} {why}; stopping", flush=True)
            return True
        if time.monotonic() - child.started >= HEALTHY_RUN_S:
            child.backoff_s = BACKOFF_S
        child.restart_at = time.monotonic() + child.backoff_s
        print(f"keel: {child.name} (pid {child.proc.pid}) {why}; restarting it in {child.backoff_s:.0f}s", flush=True)
        child.backoff_s = min(MAX_BACKOFF_S, child.backoff_s * 2)
        return False

    def _restart(self, child: Child) -> None:
        child.proc = self._spawn(child.cmd, child.env, child.log)
        child.started, child.restart_at, child.restarts = time.monotonic(), None, child.restarts + 1
        print(f"keel: {child.name} restarted, pid {child.proc.pid} (restart {child.restarts})", flush=True)

    def _poll(self) -> int | None:
        """One pass over the children; an exit code when everything must stop."""
        for c in self.children:
            if c.restart_at is not None:
                if time.monotonic() >= c.restart_at:
                    self._restart(c)
            elif c.proc.poll() is not None and self._exited(c):
                return c.proc.returncode or 1
        return None

    def run(self, poll_s: float = 0.25) -> int:
        """Wait until a signal arrives or a child that is not restarted exits; stop everything; return an exit
        code (0 after a signal)."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        code = 0
        try:
            while self._signal is None:
                stop = self._poll()
                if stop is not None:
                    code = stop
                    break
                time.sleep(poll_s)
        finally:
            self.stop()
            for s, handler in previous.items():
                signal.signal(s, handler)
        return code

    def stop(self) -> None:
        """SIGTERM every child's group, wait up to its grace period, then SIGKILL the group."""
        for c in self.children:
            _signal_group(c.proc, signal.SIGTERM)
        for c in self.children:
            try:
                c.proc.wait(timeout=c.grace_s)
            except subprocess.TimeoutExpired:
                print(f"keel: {c.name} did not stop within {c.grace_s:.0f}s; killing it", flush=True)
                _signal_group(c.proc, signal.SIGKILL)
                c.proc.wait()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
