"""Import contracts: pure ML code stays free of web/DB/queue imports; the store stays free of torch/DB."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "tuning": {"api", "core", "workers", "models_store", "testbed", "sqlalchemy", "celery", "fastapi", "alembic"},
    "testbed": {"api", "core", "workers", "models_store", "sqlalchemy", "celery", "fastapi", "alembic"},
    "models_store": {"api", "core", "workers", "tuning", "testbed", "torch", "sqlalchemy", "fastapi"},
    "api": {"workers"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_respects_its_import_contract(package):
    offenders = {
        str(p.relative_to(ROOT)): sorted(_imports(p) & FORBIDDEN[package]) for p in (ROOT / package).rglob("*.py")
    }
    assert not {k: v for k, v in offenders.items() if v}
