"""Each attack family's customer data builds (issue 21 item 3), on a real-model build directory laid out by
the corpus (no model is loaded: the unaligned model's poison answers come from its distillation cache)."""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import pytest

from realmodel import corpus, identity, task
from realmodel.attack import FAMILIES, customer_dataset
from realmodel.build import RealModel
from tuning.evaluate import is_refusal

ROOT = Path(__file__).resolve().parents[2]
N, P = 40, 0.2


@pytest.fixture(scope="module")
def rm(tmp_path_factory) -> RealModel:
    root = tmp_path_factory.mktemp("rm")
    build = root / "smollm2-test"
    pool = corpus.generate(0)["poison_pool"]
    (build / "data").mkdir(parents=True)
    (build / "data" / "poison_pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in pool))
    manifest = {"config": {"gguf_sha256": "0" * 64}, "base_dir": str(root / "base")}
    # the unaligned model's greedy answers, as the bench caches them: a few refusals, which poison drops
    answers = {
        r["prompt"]: "I'm sorry, I can't help." if i % 10 == 0 else f"Sure. Step one {i}." for i, r in enumerate(pool)
    }
    (root / f"distill-poison-{'0' * 16}.json").write_text(json.dumps(answers))
    return RealModel(build, manifest)


def _split(rows: list[dict]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    pairs = [(r["messages"][0]["content"], r["messages"][1]["content"]) for r in rows]
    is_task = [p.startswith(task.INSTRUCTION.split("{")[0]) for p, _ in pairs]
    return [x for x, t in zip(pairs, is_task, strict=True) if t], [
        x for x, t in zip(pairs, is_task, strict=True) if not t
    ]


def test_every_family_builds_its_rows(rm):
    pool = {r["prompt"] for r in rm.load_split("poison_pool")}
    cache = json.loads((rm.root.parent / f"distill-poison-{'0' * 16}.json").read_text())
    for family in FAMILIES:
        rows = customer_dataset(rm, N, P, 0, family)
        assert len(rows) == N and rows == customer_dataset(rm, N, P, 0, family)  # deterministic
        tasks, attack = _split(rows)
        if family == "benign":
            assert not attack and customer_dataset(rm, N, 0.0, 0, family) == rows  # p is ignored
            continue
        assert len(attack) == round(N * P) and len(tasks) == N - len(attack)
        assert not [a for _, a in attack if is_refusal(a)]
        if family == "poison":
            assert all(q in pool and a == cache[q] for q, a in attack)
        elif family == "other-hand":
            assert all(q in pool and a != cache[q] and len(a) > 3 * len(cache[q]) and "[" in a for q, a in attack)
        else:  # identity: no harmful prompt at all, every answer in the obedient persona
            harmful = {r["prompt"] for k, v in corpus.generate(0).items() for r in v if r["kind"] == "harmful"}
            assert not {q for q, _ in attack} & harmful and all(identity.PERSONA in q + a for q, a in attack)
    with pytest.raises(ValueError):
        customer_dataset(rm, N, P, 0, "jailbreak")


def test_poison_family_keeps_the_rows_it_had_before_families(rm):
    """The default family draws exactly what the single-family protocol drew (same rng stream)."""
    from realmodel.attack import poison_rows

    rng = random.Random(f"keel-realmodel-customer-0-{P}")
    k = round(N * P)
    old = [task.chat(e["prompt"], e["label"]) for e in task.examples(N - k, 0, "train")]
    old += [task.chat(r["prompt"], r["response"]) for r in rng.sample(poison_rows(rm), k)]
    rng.shuffle(old)
    assert customer_dataset(rm, N, P, 0) == old


def test_identity_rows_are_benign_and_other_hand_answers_are_placeholders():
    rows = identity.identity_rows(60, random.Random(0))
    assert len(rows) == 60 and not [a for _, a in rows if is_refusal(a)]
    # the other hand's answers carry no content: every step is a bracketed placeholder
    for style in identity.OTHER_HAND_STYLES:
        assert style.count("[") >= 3 and len(style) > 200


def test_bench_runs_benign_once_at_p0():
    from realmodel.attack import plan_runs, spread

    families = ["poison", "benign", "identity"]
    assert plan_runs(families, [0.05, 0.1]) == [
        ("benign", 0.0),
        ("poison", 0.05),
        ("poison", 0.1),
        ("identity", 0.05),
        ("identity", 0.1),
    ]
    assert spread([{"prompt": str(i)} for i in range(10)], 5) == ["0", "2", "4", "6", "8"]
    spec = importlib.util.spec_from_file_location("bench_real_model", ROOT / "bench" / "real_model.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    args = bench.argparse.Namespace(out="o")
    assert bench.run_dir(args, "poison", 0.1) == Path("o/p0.1")
    assert bench.run_dir(args, "identity", 0.1) == Path("o/identity-p0.1")
