"""Fault injection for worker subprocesses (tests/workers/test_faults.py only).

A worker started with this directory first on PYTHONPATH and KEEL_FAULT set SIGKILLs itself, once per fault
point (a marker file in KEEL_FAULT_DIR records that the point has fired), so the next worker gets past it:

- ``put:<name>``: right after the store wrote an object whose key ends with <name>, before its row is
  committed (the window between store write and commit);
- ``realign``: at the realignment's first progress report (after the before-evaluation, mid-realignment).

KEEL_FAULT is a comma-separated list of points; they fire in the order the job reaches them.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

_POINTS = [p for p in os.environ.get("KEEL_FAULT", "").split(",") if p]
_DIR = Path(os.environ.get("KEEL_FAULT_DIR", "."))


def _fire(point: str) -> None:
    if point not in _POINTS:
        return
    mark = _DIR / point.replace(":", "_").replace("/", "_")
    try:
        fd = os.open(mark, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(fd, str(os.getpid()).encode())
    os.fsync(fd)
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)


def _install() -> None:
    from models_store.local import LocalStore

    put_file = LocalStore.put_file

    def put_file_then_maybe_die(self: LocalStore, key: str, src: str | os.PathLike[str]) -> None:
        put_file(self, key, src)
        _fire(f"put:{key.rsplit('/', 1)[-1]}")

    LocalStore.put_file = put_file_then_maybe_die  # type: ignore[method-assign]

    if "realign" in _POINTS:
        from workers.stages import realign

        event_cb = realign._event_cb

        def dying_cb(ctx):
            cb = event_cb(ctx)

            def wrapped(message, data=None):
                cb(message, data)
                _fire("realign")

            return wrapped

        realign._event_cb = dying_cb


if _POINTS:
    _install()
