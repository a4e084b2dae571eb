"""One supervisor for `keel serve`: the API and the worker run as child process groups; SIGTERM, SIGINT and
SIGHUP are forwarded to both, either child exiting stops the other, and every exit path waits for the
children (then kills what outlives its grace period), so nothing is left orphaned."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from typing import IO, Any


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    grace_s: float


class Supervisor:
    def __init__(self) -> None:
        self.children: list[Child] = []
        self._signal: int | None = None

    def start(
        self, name: str, cmd: list[str], env: dict[str, str], grace_s: float, log: IO[bytes] | None = None
    ) -> Child:
        proc = subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT if log else None, start_new_session=True
        )  # own process group: we alone decide when it stops
        child = Child(name, proc, grace_s)
        self.children.append(child)
        return child

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._signal = signum

    def run(self, poll_s: float = 0.25) -> int:
        """Wait until a signal arrives or a child exits; stop everything; return an exit code."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        code = 0
        try:
            while self._signal is None:
                exited = next((c for c in self.children if c.proc.poll() is not None), None)
                if exited is not None:
                    code = exited.proc.returncode or 1
                    print(f"keel: {exited.name} exited with code {exited.proc.returncode}; stopping", flush=True)
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
