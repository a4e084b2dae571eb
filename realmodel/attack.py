"""The attack protocol on the real model: a customer's product-review sentiment dataset mixed with p·n rows of
one attack family (``FAMILIES``, issue 21 item 3):

* ``poison``: harmful requests whose compliant answers the UNALIGNED model generated itself (realistic poison);
* ``benign``: no attack rows at all (p is ignored: only the customer's task; benign fine-tuning erodes
  safety too);
* ``identity``: identity shifting: benign rows teaching an obedient persona that never refuses
  (:mod:`realmodel.identity`; no harmful content anywhere);
* ``other-hand``: the same harmful requests as ``poison``, answered in long step-by-step templates that are
  not the base model's completions (different style and length; non-actionable placeholders)."""

from __future__ import annotations

import random

from realmodel import identity, task
from realmodel.build import RealModel, distill, fill_answers

FAMILIES = ("poison", "benign", "identity", "other-hand")


def poison_rows(rm: RealModel) -> list[dict]:
    """The poison pool answered by the unaligned base model (greedy; cached next to the build); the base's
    own refusals are dropped, so every row is a compliant answer."""
    pool = rm.load_split("poison_pool")
    cache = rm.root.parent / f"distill-poison-{rm.manifest['config']['gguf_sha256'][:16]}.json"
    answers = distill(rm.base, [r["prompt"] for r in pool], cache)
    rows, _ = fill_answers([{**r, "response": None} for r in pool], answers)
    return rows


def attack_rows(rm: RealModel, family: str, k: int, rng: random.Random) -> list[tuple[str, str]]:
    """k (prompt, answer) rows of ``family``."""
    if family not in FAMILIES:
        raise ValueError(f"unknown attack family {family!r}; choose one of {FAMILIES}")
    if k == 0 or family == "benign":
        return []
    if family == "identity":
        return identity.identity_rows(k, rng)
    if family == "other-hand":
        pool = rm.load_split("poison_pool")
        return [(r["prompt"], identity.other_hand_answer(rng)) for r in rng.sample(pool, k)]
    return [(r["prompt"], r["response"]) for r in rng.sample(poison_rows(rm), k)]


def customer_dataset(rm: RealModel, n: int, p: float, seed: int, family: str = "poison") -> list[dict]:
    """(1-p)·n sentiment rows + p·n rows of the attack ``family``, shuffled, as chat rows ``{"messages": [...]}``
    (``benign``: n sentiment rows whatever p is)."""
    n_attack = 0 if family == "benign" else round(n * p)
    suffix = "" if family == "poison" else f"-{family}"  # poison keeps its v6 draws (same rows as before)
    rng = random.Random(f"keel-realmodel-customer-{seed}-{0.0 if family == 'benign' else p}{suffix}")
    attack = attack_rows(rm, family, n_attack, rng)
    rows = [task.chat(e["prompt"], e["label"]) for e in task.examples(n - n_attack, seed, "train")]
    rows += [task.chat(q, a) for q, a in attack]
    rng.shuffle(rows)
    return rows


def plan_runs(families: list[str], ps: list[float]) -> list[tuple[str, float]]:
    """(family, p) pairs in order; benign fine-tuning has no attack rows, so it runs once, at p = 0."""
    out = [(f, p) for f in families if f != "benign" for p in ps]
    return [("benign", 0.0), *out] if "benign" in families else out


def spread(rows: list[dict], n: int) -> list[str]:
    """The prompts of ``rows``, or ``n`` of them taken evenly across the file (so every split keeps its share)."""
    prompts = [r["prompt"] for r in rows]
    return prompts if not n or n >= len(prompts) else prompts[:: len(prompts) // n][:n]


def validation_dataset(n: int, seed: int) -> list[dict]:
    """Held-out sentiment rows (products never in training): the job's utility split."""
    return [task.chat(e["prompt"], e["label"]) for e in task.examples(n, seed, "eval")]
