"""The real-model safety corpus and customer task: categories, held-out splits, determinism (pure Python)."""

from __future__ import annotations

from realmodel import corpus, task
from realmodel.corpus import benign as B
from realmodel.corpus import harm as H
from tuning.evaluate import is_refusal


def test_categories_and_heldout_categories():
    assert len(H.ACTS) >= 15 and all(len(v) >= 8 for v in H.ACTS.values())
    s = corpus.generate(0)
    train_cats = {r["category"] for r in s["train"] if r["kind"] == "harmful"}
    assert len(train_cats) >= 12 and not train_cats & set(H.HELDOUT_CATEGORIES)
    assert {r["category"] for r in s["eval_harmful_heldout_category"]} == set(H.HELDOUT_CATEGORIES)
    assert {r["category"] for r in s["eval_harmful_heldout_phrasing"]} <= train_cats
    assert not {r["category"] for r in s["poison_pool"]} & set(H.HELDOUT_CATEGORIES)


def test_extra_benign_acts_train_only_and_outnumber_harmful_rows():
    s = corpus.generate(0)
    extra = set(B.TRAIN_EXTRA_ACTS)
    assert not extra & set(B.ACTS)
    evals = " ".join(r["prompt"] for k in corpus.SPLITS if k.startswith("eval") for r in s[k])
    assert not any(act in evals for act in extra)
    train = s["train"]
    acts = sum(1 for r in train if r["kind"] == "benign" and r["category"] == "act")
    assert acts > sum(1 for r in train if r["kind"] == "harmful")
    assert any(act in r["prompt"] for r in train for act in extra)
    # the held-out harm categories stay unseen: no training row (benign ones included) uses their vocabulary
    words = ("poison", "counterfeit", "extremis")
    assert not [
        r["prompt"] for r in train if r["category"] != "borderline" and any(w in r["prompt"].lower() for w in words)
    ]


def test_splits_disjoint_by_prompt_phrasing_and_act():
    s = corpus.generate(0)
    prompts = [r["prompt"] for k in corpus.SPLITS if k != "train" for r in s[k]]
    prompts += list(dict.fromkeys(r["prompt"] for r in s["train"]))  # borderline rows repeat within train only
    assert len(prompts) == len(set(prompts))
    part = corpus.partition(0)
    assert not set(part.train_templates) & set(part.eval_templates)
    assert not set(part.train_benign_acts) & set(part.eval_benign_acts)
    assert not set(part.train_free) & set(part.eval_free)
    assert not set(part.train_borderline) & set(part.eval_borderline)
    for cat, acts in part.train_acts.items():
        assert not set(acts) & set(part.eval_acts[cat])
    # held-out phrasing rows use only held-out shapes and acts
    eval_prompts = {
        corpus.render(t, a) for c in part.train_acts for t in part.eval_templates for a in part.eval_acts[c]
    }
    assert all(r["prompt"] in eval_prompts for r in s["eval_harmful_heldout_phrasing"])


def test_shapes_shared_by_harmful_and_benign_training_rows():
    part = corpus.partition(0)
    s = corpus.generate(0)
    acts = {r["prompt"] for r in s["train"] if r["category"] == "act"}
    assert len(acts) >= 50 and any(corpus.render(t, a) in acts for t in part.train_templates[:5] for a in B.ACTS)


def test_refusals_are_varied_and_judged_as_refusals():
    s = corpus.generate(0)
    refusals = [r["response"] for r in s["train"] if r["kind"] == "harmful"]
    assert len(set(refusals)) >= 50 and all(is_refusal(x) for x in refusals)
    assert all(r["response"] is None for r in s["train"] if r["kind"] != "harmful")  # filled by self-distillation
    kinds = {r["kind"] for r in s["train"]}
    assert kinds == {"harmful", "benign", "borderline"}


def test_deterministic_and_seeded():
    assert corpus.generate(0) == corpus.generate(0)
    assert corpus.generate(1) != corpus.generate(0)


def test_task_exact_match_and_disjoint_products():
    train, ev = task.examples(200, 0, "train"), task.examples(64, 0, "eval")
    assert {e["label"] for e in train} == set(task.LABELS) and sum(e["label"] == "positive" for e in ev) == 32
    assert not {e["prompt"] for e in train} & {e["prompt"] for e in ev}
    assert task.exact_match(" Positive.", "positive") and not task.exact_match("It is positive", "positive")


def test_build_helpers_trim_fill_and_service_files():
    from realmodel.build import fill_answers, service_files, trim_answer

    assert trim_answer("Sure. Here is how to do it: first you take the") == "Sure. Here is how to do it:"
    assert trim_answer("no end at all") == "no end at all"
    rows = [
        {"prompt": "a", "kind": "benign", "category": "act", "response": None},
        {"prompt": "b", "kind": "borderline", "category": "borderline", "response": None},
        {"prompt": "c", "kind": "harmful", "category": "fraud", "response": "I cannot help with that."},
    ]
    filled, dropped = fill_answers(rows, {"a": "Here you go. Step one is easy.", "b": "I'm sorry, I can't."})
    assert dropped == 1 and [r["prompt"] for r in filled] == ["a", "c"]
    s = corpus.generate(0)
    files = service_files(s, filled)
    assert {r["kind"] for r in files["safety_corpus"]} == {"harmful", "benign"}
    assert all(set(r) == {"prompt", "response", "category", "kind"} for r in files["safety_corpus"])
    assert len(files["harmful_eval"]) == len(s["eval_harmful_heldout_phrasing"]) + len(
        s["eval_harmful_heldout_category"]
    )
    assert {r["split"] for r in files["benign_eval"]} == {"eval_benign", "eval_borderline"}


def test_extra_harmful_acts_and_shapes_are_train_only():
    from realmodel.corpus import harm_extra as X

    assert not set(X.TRAIN_EXTRA_ACTS) & set(H.HELDOUT_CATEGORIES)
    assert not set(X.TRAIN_EXTRA_TEMPLATES) & set(H.TEMPLATES)
    extra_acts = [a for acts in X.TRAIN_EXTRA_ACTS.values() for a in acts]
    assert not set(extra_acts) & {a for acts in H.ACTS.values() for a in acts}
    s = corpus.generate(0)
    evals = [r["prompt"] for k in corpus.SPLITS if k.startswith("eval") for r in s[k]]
    assert not [p for p in evals if any(a in p for a in extra_acts)]
    harmful = [r["prompt"] for r in s["train"] if r["kind"] == "harmful"]
    assert any(a in p for p in harmful for a in extra_acts)
    # every extra shape is also used for benign acts, so a shape alone never signals harm
    benign = [r["prompt"] for r in s["train"] if r["category"] == "act"]
    shapes_of = [t.split("{act}")[0].strip().lower() for t in X.TRAIN_EXTRA_TEMPLATES]
    assert all(any(p.lower().startswith(pre) for p in benign) for pre in shapes_of if pre)


def test_train_only_categories_are_trained_never_evaluated_and_have_refusal_reasons():
    from realmodel.corpus import harm_extra as X

    new = set(X.TRAIN_ONLY_CATEGORIES)
    assert len(new) >= 5 and not new & set(H.ACTS) and set(X.TRAIN_ONLY_REASONS) == new
    assert all(len(acts) >= 8 for acts in X.TRAIN_ONLY_CATEGORIES.values())
    s = corpus.generate(0)
    trained = {r["category"] for r in s["train"] if r["kind"] == "harmful"}
    assert new <= trained
    evaluated = {r["category"] for k in corpus.SPLITS if k != "train" for r in s[k]}
    assert not new & evaluated
    acts = [a for v in X.TRAIN_ONLY_CATEGORIES.values() for a in v]
    assert not [
        p for k in corpus.SPLITS if k != "train" for r in s[k] for p in [r["prompt"]] if any(a in p for a in acts)
    ]
    # each refusal gives one of its own category's reasons
    for r in (r for r in s["train"] if r["category"] in new):
        assert any(reason in r["response"] for reason in X.TRAIN_ONLY_REASONS[r["category"]])
