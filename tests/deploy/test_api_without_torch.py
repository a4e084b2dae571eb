"""The API image installs no torch (Dockerfile target `api`), so everything it runs must import without it:
the FastAPI app and the `keel` CLI (the `migrate` one-shot runs `keel migrate` and `keel bootstrap`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKER_ONLY = ("torch", "peft", "accelerate", "matplotlib")

BLOCK = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {WORKER_ONLY!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not installed in the api image)", name=name)
sys.meta_path.insert(0, Block())
"""


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCK + code], cwd=ROOT, check=False, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("import api.main", id="api.main"),
        pytest.param(
            "from importlib.metadata import entry_points\n(ep,) = entry_points(group='console_scripts', name='keel')\n"
            "ep.load()",
            id="keel-cli",
        ),
    ],
)
def test_runs_without_worker_dependencies(code):
    out = _run(code)
    assert out.returncode == 0, out.stderr[-3000:]
