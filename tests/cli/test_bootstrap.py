"""`keel bootstrap` (production first run) is idempotent: the admin key from the secret works, base models
are registered, and a second run changes nothing."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bootstrap_twice_ensures_one_admin_key_and_registers_models(tmp_path, micro):
    key_file = tmp_path / "admin_key"
    key_file.write_text("sk-keel-admin-" + "x" * 32 + "\n")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KEEL_")},
        "KEEL_DATA_DIR": str(tmp_path / "data"),
        "KEEL_STORE_DIR": str(tmp_path / "store"),
    }
    cmd = [
        sys.executable,
        "-m",
        "cli",
        "bootstrap",
        "--admin-key-file",
        str(key_file),
        "--register-model",
        "micro",
        "--path",
        micro["base"],
        "--alignment-adapter",
        micro["alignment"],
    ]
    for _ in range(2):
        out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "registered base model micro" in out.stdout
    db = sqlite3.connect(tmp_path / "data" / "keel.db")
    assert db.execute("select count(*) from api_keys where role = 'admin'").fetchone() == (1,)
    row = db.execute("select path, alignment_adapter from base_models where id = 'micro'").fetchone()
    assert row == (micro["base"], micro["alignment"])
    bad = subprocess.run(
        [*cmd[:5], "--register-model", "x"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert bad.returncode != 0 and "--path" in bad.stderr
