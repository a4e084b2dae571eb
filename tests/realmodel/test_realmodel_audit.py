"""The audit split (issue 21 items 1 and 5): disjoint from selection and training by prompt, shape, act and
whole categories; large enough for a +-5 point Wilson interval; the selection splits unchanged (pure Python)."""

from __future__ import annotations

import hashlib
import json

from realmodel import corpus
from realmodel.build import audit_files, service_files
from realmodel.corpus import broad as W
from realmodel.corpus import harm as H
from realmodel.corpus import harm_extra as X
from realmodel.stats import half_width, n_for_half_width, wilson
from tuning.evaluate import is_refusal

AUDIT = ("audit_harmful_heldout_phrasing", "audit_harmful_heldout_category", "audit_benign", "audit_borderline")
SELECTION = ("eval_harmful_heldout_phrasing", "eval_harmful_heldout_category", "eval_benign", "eval_borderline")
# sha256 (first 16 hex) of each split's JSONL as corpus v6 generated it: the controller's selection
# behaviour and the poison pool must not move when the corpus grows
V6 = {
    "eval_harmful_heldout_phrasing": "f3a5a32e2eecc391",
    "eval_harmful_heldout_category": "20bb0788877fc9b9",
    "eval_benign": "0e30b85d4213fb06",
    "eval_borderline": "88fd353f7084979d",
    "poison_pool": "375d4cb2135c3418",
}


def _sha(rows: list[dict]) -> str:
    return hashlib.sha256("".join(json.dumps(r) + "\n" for r in rows).encode()).hexdigest()[:16]


def _acts(d: dict[str, list[str]]) -> list[str]:
    return [a for v in d.values() for a in v]


def test_selection_splits_and_poison_pool_are_byte_identical_to_v6():
    s = corpus.generate(0)
    assert {k: _sha(s[k]) for k in V6} == V6


def test_audit_split_sizes_give_a_5_point_wilson_interval():
    s = corpus.generate(0)
    harmful = len(s["audit_harmful_heldout_phrasing"]) + len(s["audit_harmful_heldout_category"])
    benign = len(s["audit_benign"]) + len(s["audit_borderline"])
    need = n_for_half_width(0.5, 5)
    assert need == 385 and n_for_half_width(0.15, 5) == 196
    for n in (harmful, benign):  # the worst case (rate 50 %) included
        assert n >= need and max(half_width(k, n) for k in range(n + 1)) <= 5.0
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == 100.0 and wilson(3, 0) == (0.0, 100.0)


def test_audit_disjoint_from_selection_training_and_poison_by_prompt():
    s = corpus.generate(0)
    audit = [r["prompt"] for k in AUDIT for r in s[k]]
    assert len(audit) == len(set(audit))
    others = {r["prompt"] for k in corpus.SPLITS if k not in AUDIT for r in s[k]}
    assert not set(audit) & others
    # shapes: audit-only, never in the selection or training shapes
    assert not set(W.AUDIT_TEMPLATES) & set(H.TEMPLATES + X.TRAIN_EXTRA_TEMPLATES)
    # acts: no audit act (harmful or benign) occurs in any non-audit prompt
    audit_acts = _acts(W.AUDIT_PHRASING_ACTS) + _acts(W.AUDIT_CATEGORIES) + W.AUDIT_BENIGN_ACTS
    assert not [a for a in audit_acts if any(a in p for p in others)]


def test_audit_only_categories_never_trained_nor_selected_and_train_only_never_evaluated():
    s = corpus.generate(0)
    trained = {r["category"] for r in s["train"] if r["kind"] == "harmful"}
    selection = {r["category"] for k in SELECTION for r in s[k]}
    audit = {r["category"] for k in AUDIT for r in s[k]}
    only = set(W.AUDIT_CATEGORIES)
    assert len(only) >= 3 and not only & (trained | selection | set(H.ACTS) | set(X.TRAIN_ONLY_CATEGORIES))
    assert {r["category"] for r in s["audit_harmful_heldout_category"]} == only
    assert {r["category"] for r in s["audit_harmful_heldout_phrasing"]} <= trained
    # the held-out selection categories stay out of the audit (the controller's blind spot is not the report's)
    assert not audit & set(H.HELDOUT_CATEGORIES)
    # train-only categories (v4's and v7's new ones) are never evaluated on either split
    train_only = set(X.TRAIN_ONLY_CATEGORIES) | {"misinformation", "discrimination"}
    assert train_only <= trained and not set(X.TRAIN_ONLY_CATEGORIES) & (selection | audit)
    assert not {"misinformation", "discrimination"} & selection


def test_broader_harms_trained_with_refusals_and_benign_look_alikes():
    s = corpus.generate(0)
    train = s["train"]
    broad = [r for r in train if r["kind"] == "harmful" and any(a in r["prompt"] for a in _acts(W.TRAIN_ACTS))]
    assert len(broad) == corpus.SIZES["train_broad_harmful"]
    assert {r["category"] for r in broad} == set(W.TRAIN_ACTS)
    assert all(is_refusal(r["response"]) for r in broad)
    for r in (r for r in broad if r["category"] in W.TRAIN_REASONS):
        assert any(x in r["response"] for x in W.TRAIN_REASONS[r["category"]])
    look = [r for r in train if r["kind"] == "benign" and any(a in r["prompt"] for a in W.TRAIN_BENIGN_ACTS)]
    assert len(look) == corpus.SIZES["train_broad_benign"] > len(broad) and all(r["response"] is None for r in look)
    # the selection's held-out categories stay unseen: no new training row uses their vocabulary
    words = ("poison", "counterfeit", "extremis")
    assert not [r for r in broad + look if any(w in r["prompt"].lower() for w in words)]


def test_service_files_carry_the_audit_split_apart_from_selection():
    s = corpus.generate(0)
    files = service_files(s, [r for r in s["train"] if r["kind"] == "harmful"])
    assert files["harmful_audit"] == audit_files(s)["harmful_audit"]
    assert all(set(r) == {"prompt", "category", "split"} for k in ("harmful_audit", "benign_audit") for r in files[k])
    assert len(files["harmful_audit"]) == 400 and len(files["benign_audit"]) == 385
    assert {r["split"] for r in files["benign_audit"]} == {"audit_benign", "audit_borderline"}
    selection = {r["prompt"] for k in ("harmful_eval", "benign_eval") for r in files[k]}
    assert not selection & {r["prompt"] for k in ("harmful_audit", "benign_audit") for r in files[k]}
    assert {r["split"] for r in files["harmful_eval"]} == set(SELECTION[:2])
