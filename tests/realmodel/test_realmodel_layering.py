"""realmodel/ and tuning/gguf.py stay pure ML: no web, DB or queue imports (the service imports them, not back)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {"api", "core", "workers", "models_store", "sqlalchemy", "celery", "fastapi", "alembic"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_realmodel_and_gguf_import_contract():
    files = [*(ROOT / "realmodel").rglob("*.py"), ROOT / "tuning" / "gguf.py", ROOT / "bench" / "real_model.py"]
    offenders = {str(p.relative_to(ROOT)): sorted(_imports(p) & FORBIDDEN) for p in files}
    assert not {k: v for k, v in offenders.items() if v}
