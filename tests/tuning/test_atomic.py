"""tuning.atomic: a directory appears whole or not at all, and a cached model build runs once, under a lock,
clearing what a killed build left (the one lifecycle of the testbed and real-model builds)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from tuning.atomic import atomic_dir, cached_build


def test_a_failed_swap_puts_the_old_directory_back(tmp_path, monkeypatch):
    dest = tmp_path / "out"
    with atomic_dir(dest) as tmp:
        (tmp / "f").write_text("old")
    real = os.replace

    def failing(a, b):
        if Path(b) == dest and not Path(a).name.endswith(".old"):
            raise OSError("disk gone")
        return real(a, b)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError), atomic_dir(dest) as tmp:
        (tmp / "f").write_text("new")
    monkeypatch.undo()
    assert (dest / "f").read_text() == "old" and os.listdir(tmp_path) == ["out"]


def test_a_block_that_raises_leaves_the_destination_as_it_was(tmp_path):
    dest = tmp_path / "out"
    with atomic_dir(dest) as tmp:
        (tmp / "f").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(dest) as tmp:
        (tmp / "f").write_text("new")
        raise RuntimeError
    assert (dest / "f").read_text() == "old" and os.listdir(tmp_path) == ["out"]


def _build(calls: list[str]):
    def build(tmp: Path) -> None:
        calls.append(tmp.name)
        (tmp / "manifest.json").write_text("{}")

    return build


def test_a_cached_build_runs_once_and_clears_a_killed_builds_leftovers(tmp_path):
    (tmp_path / ".build-deadbeef" / "base").mkdir(parents=True)
    calls: list[str] = []
    threads = [threading.Thread(target=cached_build, args=(tmp_path / "m-1", _build(calls))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and calls[0].startswith(".build-")
    assert sorted(os.listdir(tmp_path)) == [".lock", "m-1"]
    cached_build(tmp_path / "m-1", _build(calls), force=True)
    assert len(calls) == 2 and (tmp_path / "m-1" / "manifest.json").exists()
