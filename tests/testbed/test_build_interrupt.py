"""A testbed build stopped with SIGTERM leaves no half-built directory, and a killed build's leftovers are
cleaned by the next build (under the cache lock)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_sigterm_during_a_build_leaves_nothing_half_built(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "testbed", "build", "--out", str(tmp_path)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".build-*/data")) and time.monotonic() < deadline:
        time.sleep(0.2)  # the build is under way once its corpus is being written
    assert list(tmp_path.glob(".build-*")), "the build did not start"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) != 0
    assert not list(tmp_path.glob(".build-*")) and not list(tmp_path.glob("testbed-*"))


def test_leftovers_of_a_killed_build_are_removed_by_the_next_one(tmp_path, monkeypatch):
    from testbed import build

    (tmp_path / ".build-deadbeef" / "base").mkdir(parents=True)
    monkeypatch.setattr(build, "_build", lambda out, seed: (out / "manifest.json").write_text("{}"))
    tb = build.build_testbed(tmp_path, seed=123)
    assert not list(tmp_path.glob(".build-*")) and tb.root.name.startswith("testbed-")
