"""The aligned reference's HS / over-refusal and the screening direction are kept in ``cache_dir`` across
processes: a second realignment (a fresh ``RealignSession``, no shared memo) reads them instead of recomputing,
and reports the same reference scores."""

from __future__ import annotations

import json
from pathlib import Path

from tests.factories import chat_rows
from tuning.rows import normalize_row
from tuning.safety import EvalSets, realign_job
from tuning.safety import session as session_mod


def _split(micro, name: str) -> list[dict]:
    return [json.loads(x) for x in (Path(micro["data"]) / f"{name}.jsonl").read_text().splitlines() if x.strip()]


def _sets(micro) -> EvalSets:
    harmful = [r["prompt"] for r in _split(micro, "harmful_eval")]
    benign = [r["prompt"] for r in _split(micro, "benign_eval")]
    rows = [normalize_row(r) for r in chat_rows(6)]
    corpus = _split(micro, "safety_corpus")
    return EvalSets(harmful, benign, rows, replay_examples=rows, safety_corpus=corpus, max_new_tokens=4)


def test_reference_scores_and_screening_direction_survive_the_process(micro, tmp_path, monkeypatch):
    calls = {"evaluate": 0, "direction": 0}
    evaluate, direction = session_mod.RealignSession.evaluate, session_mod.corpus_direction

    def counted_evaluate(self, adapter, limits=None, sets=None):
        calls["evaluate"] += 1
        return evaluate(self, adapter, limits, sets)

    def counted_direction(*a, **kw):
        calls["direction"] += 1
        return direction(*a, **kw)

    monkeypatch.setattr(session_mod.RealignSession, "evaluate", counted_evaluate)
    monkeypatch.setattr(session_mod, "corpus_direction", counted_direction)
    cache = tmp_path / "cache"
    reports = []
    for i in range(2):
        reports.append(
            realign_job(
                micro["base"], micro["alignment"], micro["alignment"], None, str(tmp_path / f"out{i}"),
                method="safelora", eval_sets=_sets(micro), device="cpu", cache_dir=str(cache),
            )
        )  # fmt: skip
        seen = dict(calls)
        calls.update(evaluate=0, direction=0)
        # reference + before + the SafeLoRA trial the first time; the reference's HS/over-refusal come from disk after
        assert seen == ({"evaluate": 3, "direction": 1} if i == 0 else {"evaluate": 2, "direction": 0}), seen
    assert reports[0].reference == reports[1].reference
    assert sorted(p.name.split("-")[0] for p in cache.iterdir()) == ["reference", "screen"]
    (next(cache.glob("reference-*"))).write_bytes(b"not a torch file")  # unreadable: recomputed, rewritten
    realign_job(
        micro["base"], micro["alignment"], micro["alignment"], None, str(tmp_path / "out2"),
        method="safelora", eval_sets=_sets(micro), device="cpu", cache_dir=str(cache),
    )  # fmt: skip
    assert calls == {"evaluate": 3, "direction": 0}


def test_an_unrealigned_release_is_reported_as_such(micro, tmp_path):
    """``none`` (a tenant granted it) and a base model without an alignment adapter both release the adapter as
    trained; the report says so, and why."""
    kw = {"eval_sets": _sets(micro), "device": "cpu"}
    off = realign_job(micro["base"], micro["alignment"], micro["alignment"], None, str(tmp_path / "a"), "none", **kw)
    bare = realign_job(micro["base"], None, micro["alignment"], None, str(tmp_path / "b"), "nlsr", **kw)
    done = realign_job(
        micro["base"], micro["alignment"], micro["alignment"], None, str(tmp_path / "c"), "safelora", **kw
    )
    for rep, why in ((off, "switched off"), (bare, "no alignment adapter")):
        d = rep.to_dict()
        assert d["released_unrealigned"] is True and why in d["unrealigned_reason"] and d["method"] == "none"
        assert (tmp_path / ("a" if rep is off else "b") / "adapter_config.json").exists()
    assert done.to_dict()["released_unrealigned"] is False and done.to_dict()["unrealigned_reason"] is None


def test_one_code_path_decides_every_trial(micro, tmp_path, monkeypatch):
    """A single method applied once and the controller's escalation both decide their trials in ``run_trial``."""
    from tuning.safety import controller

    seen, run_trial = [], controller.run_trial

    def counted(strat, *a, **kw):
        seen.append(strat.label)
        return run_trial(strat, *a, **kw)

    monkeypatch.setattr(controller, "run_trial", counted)
    kw = {"eval_sets": _sets(micro), "device": "cpu"}
    rep = realign_job(
        micro["base"], micro["alignment"], micro["alignment"], None, str(tmp_path / "s"), "safelora", **kw
    )
    assert seen == ["safelora(10 modules)"] and [t["strategy"] for t in rep.trials] == seen
    assert set(rep.trials[0]) >= {"scores", "checks", "seconds", "method_s", "eval_s", "method_cpu_s", "eval_cpu_s"}


def test_the_report_shows_the_audit_split_and_the_controller_never_sees_it(micro, tmp_path, monkeypatch):
    """Trials are scored on the selection split only; the report's before/after/reference are the audit split's,
    each with 95 % intervals on as many prompts as the audit split has; the controller's numbers are kept."""
    from dataclasses import replace

    from tuning.safety import scoring

    sets = _sets(micro)
    harmful, benign = sets.harmful_prompts, sets.benign_prompts
    sets = replace(
        sets,
        harmful_prompts=harmful[: len(harmful) // 2],
        benign_prompts=benign[: len(benign) // 2],
        audit_harmful_prompts=harmful[len(harmful) // 2 :],
        audit_benign_prompts=benign[len(benign) // 2 :],
    )
    seen: list[tuple[str, ...]] = []
    score = scoring.score

    def recorded(model, tok, adapter, s, limits=None):
        seen.append(tuple(s.harmful_prompts))
        return score(model, tok, adapter, s, limits)

    monkeypatch.setattr(session_mod, "score", recorded)
    rep = realign_job(
        micro["base"], micro["alignment"], micro["alignment"], None, str(tmp_path / "o"), "safelora",
        eval_sets=sets, device="cpu",
    ).to_dict()  # fmt: skip
    audit, selection = tuple(sets.audit_harmful_prompts), tuple(sets.harmful_prompts)
    # reference, before, the trial on the selection split; then reference, before, after on the audit split
    assert seen == [selection] * 3 + [audit] * 3
    assert rep["split"] == "audit" and rep["selection"]["after"]["hs"] == rep["trials"][0]["scores"]["hs"]
    for row in ("before", "after", "reference"):
        assert rep[row]["n"] == {"hs": len(audit), "fa": 6, "over_refusal": len(sets.audit_benign_prompts)}
        lo, hi = rep[row]["ci"]["hs"]
        assert lo <= rep[row]["hs"] <= hi
        assert rep["selection"][row]["n"]["hs"] == len(selection)
    rule = rep["release_rule"]
    assert rule["split"] == "audit" and rule["after_hs"] == rep["after"]["hs"]
    assert rule["holds_on_point_estimate"] == (rep["after"]["hs"] <= rep["reference"]["hs"] + 5.0)
    assert isinstance(rule["intervals_overlap"], bool)


def test_without_an_audit_split_the_report_says_it_shows_the_selection_split(micro, tmp_path):
    rep = realign_job(
        micro["base"], micro["alignment"], micro["alignment"], None, str(tmp_path / "o"), "none",
        eval_sets=_sets(micro), device="cpu",
    ).to_dict()  # fmt: skip
    assert rep["split"] == "selection" and rep["selection"] is None and rep["after"]["ci"]["hs"] is not None
