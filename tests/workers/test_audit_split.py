"""The realignment stage's prompts: a selection split for the controller and a disjoint audit split for the report,
from the base model's dedicated audit files or, without them, from its eval prompts cut in two."""

from __future__ import annotations

import json

from workers.stages.realign import split_prompts


def _write(path, prompts: list[str]) -> str:
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    return str(path)


def test_dedicated_audit_files_are_the_audit_split(tmp_path):
    data = {
        "harmful_eval": _write(tmp_path / "he.jsonl", [f"sel{i}" for i in range(30)]),
        "harmful_audit": _write(tmp_path / "ha.jsonl", [f"aud{i}" for i in range(50)]),
    }
    selection, audit = split_prompts(data, "harmful", n=40)
    assert sorted(selection) == sorted(f"sel{i}" for i in range(30))
    assert len(audit) == 40 and all(p.startswith("aud") for p in audit)
    # the audit split has its own size (KEEL_AUDIT_EVAL_SIZE): the report's intervals, not the trials' cost
    selection, audit = split_prompts(data, "harmful", n=10, n_audit=45)
    assert len(selection) == 10 and len(audit) == 45 and all(p.startswith("aud") for p in audit)


def test_without_audit_files_the_eval_prompts_are_halved_deterministically(tmp_path):
    data = {"benign_eval": _write(tmp_path / "be.jsonl", [f"b{i}" for i in range(21)])}
    selection, audit = split_prompts(data, "benign", n=200)
    assert (selection, audit) == split_prompts(data, "benign", n=200)
    assert len(selection) == 10 and len(audit) == 11 and not set(selection) & set(audit)
    assert split_prompts(data, "harmful", n=200) == ([], [])  # no file: no prompts
