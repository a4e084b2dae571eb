"""Every bench script imports: the benches run outside the default suite (slow, real models), so a name moved
by a refactor would otherwise surface only when someone runs them (bench/fgsn_sweep.py imported FgsnConfig
from the registry after issue 20 moved it into its method module)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

SCRIPTS = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "bench").glob("*.py"))


def test_the_bench_folder_has_scripts() -> None:
    assert "real_model" in SCRIPTS and "fgsn_sweep" in SCRIPTS


@pytest.mark.parametrize("name", SCRIPTS)
def test_bench_script_imports(name: str) -> None:
    module = importlib.import_module(f"bench.{name}")
    assert module.__file__ is not None and Path(module.__file__).stem == name
