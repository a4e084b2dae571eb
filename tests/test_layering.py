"""Import contracts between the packages (read from the source with ast, so a violation fails here first).

- tuning/testbed/realmodel (pure ML) import nothing of the service; models_store imports nothing of Keel or torch
  but the house's one atomic_dir (tuning.atomic, standard library only).
- core never imports torch/peft/transformers or the ML code at module level, except tuning's torch-free
  leaves (row parsing, run planning, specs, the method registry) that upload validation and job creation
  share with the trainer.
- core's domains stand in one order, the ground first (CORE_DOMAINS): a domain imports only those below it, so
  a job depends on files, base models and results, never the reverse, and no two domains import each other.
- api never imports workers, tuning, torch or the CLI; workers reach the database only through core's
  services (no sqlalchemy, repositories or ORM tables in workers/).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICE = {"api", "core", "workers", "cli", "sqlalchemy", "celery", "fastapi", "alembic"}
ALLOWED = {"models_store": {"tuning.atomic"}}
TORCH_FREE_TUNING = {"tuning.rows", "tuning.plan", "tuning.specs", "tuning.safety.registry"}
FORBIDDEN = {
    "tuning": SERVICE | {"models_store", "testbed"},
    "testbed": SERVICE | {"models_store"},
    "realmodel": SERVICE | {"models_store", "testbed"},
    "models_store": {"api", "core", "workers", "cli", "tuning", "testbed", "torch", "sqlalchemy", "fastapi"},
    "core": {"api", "workers", "cli", "testbed", "torch", "peft", "transformers"},
    "api": {"workers", "cli", "tuning", "testbed", "torch", "peft"},
    "workers": {"api", "cli", "sqlalchemy"},
}


def _imports(path: Path, top_level_only: bool = False, submodules: bool = False) -> set[str]:
    """Imported module names; with ``submodules`` also ``pkg.name`` for ``from pkg import name`` (which may be
    a module: ``from core.files import repository``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            if submodules:
                names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def _violations(package: str, top_level_only: bool = False) -> dict[str, list[str]]:
    out = {}
    for p in (ROOT / package).rglob("*.py"):
        allowed = ALLOWED.get(package, set())
        bad = sorted(
            n for n in _imports(p, top_level_only) if n.split(".")[0] in FORBIDDEN[package] and n not in allowed
        )
        if bad:
            out[str(p.relative_to(ROOT))] = bad
    return out


@pytest.mark.parametrize("package", ["tuning", "testbed", "realmodel", "models_store", "api", "workers"])
def test_package_respects_its_import_contract(package):
    assert _violations(package) == {}


def test_core_imports_no_ml_stack_at_module_level():
    assert _violations("core", top_level_only=True) == {}
    tuning = {
        str(p.relative_to(ROOT)): sorted(
            n for n in _imports(p, True) if n.startswith("tuning") and n not in TORCH_FREE_TUNING
        )
        for p in (ROOT / "core").rglob("*.py")
    }
    assert {k: v for k, v in tuning.items() if v} == {}


CORE_DOMAINS = ["observability", "tenants", "events", "base_models", "files", "results", "webhooks", "jobs"]


def test_core_domains_import_only_the_domains_below_them():
    bad = {}
    for rank, domain in enumerate(CORE_DOMAINS):
        above = {f"core.{d}" for d in CORE_DOMAINS[rank + 1 :]}
        for p in (ROOT / "core" / domain).rglob("*.py"):
            hits = sorted(n for n in _imports(p) if ".".join(n.split(".")[:2]) in above)
            if hits:
                bad[str(p.relative_to(ROOT))] = hits
    assert bad == {}
    assert sorted(CORE_DOMAINS) == sorted(p.name for p in (ROOT / "core").iterdir() if (p / "__init__.py").exists())


def test_workers_reach_the_database_only_through_core_services():
    bad = {}
    for p in (ROOT / "workers").rglob("*.py"):
        hits = sorted(
            n for n in _imports(p, submodules=True) if n == "core.tables" or n.endswith((".repository", ".models"))
        )
        if hits:
            bad[str(p.relative_to(ROOT))] = hits
    assert bad == {}


def test_the_api_process_starts_without_the_ml_stack():
    code = (
        "import sys, api.main; heavy = sorted(m for m in ('torch', 'peft', 'transformers', 'tuning.train') "
        "if m in sys.modules); print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
