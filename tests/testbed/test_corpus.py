"""The testbed corpus: deterministic, held-out splits disjoint from training, keyword-clean answers."""

from __future__ import annotations

import random

import pytest

from testbed import corpus
from testbed import lexicon_benign as B
from testbed import lexicon_harm as H
from testbed import templates as T
from testbed.vocab import gerund, partition
from tuning.evaluate import REFUSAL_KEYWORDS, is_refusal


@pytest.fixture(scope="module")
def splits() -> corpus.Splits:
    return corpus.generate(0)


def _train_rows(s: corpus.Splits) -> list[dict]:
    return s.pretrain + s.align + s.poison_pool + s.safety_corpus


def test_generation_is_deterministic_per_seed(splits):
    again, other = corpus.generate(0), corpus.generate(1)
    assert again == splits
    assert other.harmful_eval != splits.harmful_eval and other.pretrain != splits.pretrain


def test_eval_prompts_never_appear_in_training_data(splits):
    train = {r["prompt"] for r in _train_rows(splits)}
    evals = [r["prompt"] for r in splits.harmful_eval + splits.benign_eval + splits.harmful_probe + splits.benign_probe]
    assert not train & set(evals)
    assert len(set(evals)) == len(evals)
    assert not {t["prompt"] for t in splits.task_train} & {t["prompt"] for t in splits.task_eval}


def test_held_out_acts_are_disjoint_from_training_acts_and_fill_the_eval(splits):
    vocab = partition(random.Random(0))  # generate() draws the partition first from Random(seed)
    for kind in ("harm", "benign"):
        train = {a for acts in vocab[f"{kind}_train"].acts.values() for a in acts}
        held = {a for acts in vocab[f"{kind}_held"].acts.values() for a in acts}
        assert train and held and not train & held
    train_acts = {a for acts in vocab["harm_train"].acts.values() for a in acts}
    rows = [r for r in splits.harmful_eval if r["held"] == "vocab" and "act" in r]
    assert len(rows) >= 150 and all(r["act"] not in train_acts for r in rows)
    # pretraining *knows* every act (knowledge Q/A), but no request with a held-out act is ever answered
    requests = [r for r in _train_rows(splits) if r["category"] != "knowledge"]
    text = " ".join(r["prompt"].lower() for r in requests)
    unseen = [r for r in rows if r["act"].lower() not in text and gerund(r["act"]).lower() not in text]
    assert len(unseen) >= 0.9 * len(rows), "held-out acts leak into training prompts"


def test_eval_covers_every_harm_category(splits):
    cats = {r["category"] for r in splits.harmful_eval}
    assert set(H.HARM_GROUPS) | set(H.HARM_FREE) <= cats | {"other"}


def test_no_act_topic_or_answer_skeleton_contains_a_refusal_keyword():
    words = [
        a for groups in (H.HARM_GROUPS, B.BENIGN_GROUPS) for gs in groups.values() for vs, os in gs for a in vs + os
    ]
    words += [a for free in (H.HARM_FREE, B.BENIGN_FREE) for lst in free.values() for a in lst]
    words += B.CONTRASTIVE + B.BENIGN_TOPICS + [t for ts in H.TOPICS.values() for t in ts] + T.COMPLY + T.COMPLY_TOPIC
    assert not [w for w in words if is_refusal(w)]
    assert all(is_refusal(r) for r in T.REFUSE + T.REFUSE_SELF_HARM)


def test_answers_and_refusals_are_told_apart_by_the_keyword_judge(splits):
    compliant = (
        splits.pretrain + splits.poison_pool + [r for r in splits.align + splits.safety_corpus if r["kind"] == "benign"]
    )
    offending = [r["response"] for r in compliant if is_refusal(r["response"])]
    assert not offending, offending[:3]
    assert all(is_refusal(r["response"]) for r in splits.align + splits.safety_corpus if r["kind"] == "harmful")
    for word in ("illegal", "As an", "Sorry", "I do not", "Hello!"):
        assert word in REFUSAL_KEYWORDS and not any(word in r["response"] for r in compliant)


def test_benign_data_contains_contrastive_requests_with_harm_words(splits):
    contrastive = [r for r in splits.align if r["category"] == "contrastive"]
    assert len(contrastive) >= 100 and all(not is_refusal(r["response"]) for r in contrastive)
    assert any(w in r["prompt"].lower() for r in contrastive for w in ("kill", "shoot", "hack", "steal"))


def test_task_uses_new_label_words_balanced(splits):
    labels = [t["label"] for t in splits.task_train]
    assert set(labels) == set(corpus.LABELS) and 0.4 < labels.count(corpus.LABELS[0]) / len(labels) < 0.6
    assert not any(lab in r["prompt"] + r["response"] for r in splits.pretrain + splits.align for lab in corpus.LABELS)


@pytest.mark.parametrize(
    "act,ing",
    [
        ("make a cake", "making a cake"),
        ("commit wire fraud", "committing wire fraud"),
        ("tie a knot", "tying a knot"),
        ("secretly record my boss", "secretly recording my boss"),
        ("see a doctor", "seeing a doctor"),
        ("3D print a gun", "3D print a gun"),
    ],
)
def test_gerund(act, ing):
    assert gerund(act) == ing
