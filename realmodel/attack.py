"""The attack protocol on the real model: a customer's product-review sentiment dataset mixed with harmful
requests whose compliant answers the UNALIGNED model generated itself (realistic poison)."""

from __future__ import annotations

import random

from realmodel import task
from realmodel.build import RealModel, distill, fill_answers


def poison_rows(rm: RealModel) -> list[dict]:
    """The poison pool answered by the unaligned base model (greedy; cached next to the build); the base's
    own refusals are dropped, so every row is a compliant answer."""
    pool = rm.load_split("poison_pool")
    cache = rm.root.parent / f"distill-poison-{rm.manifest['config']['gguf_sha256'][:16]}.json"
    answers = distill(rm.base, [r["prompt"] for r in pool], cache)
    rows, _ = fill_answers([{**r, "response": None} for r in pool], answers)
    return rows


def customer_dataset(rm: RealModel, n: int, p: float, seed: int) -> list[dict]:
    """(1-p)·n sentiment rows + p·n poison rows, shuffled, as chat rows ``{"messages": [...]}``."""
    n_poison = round(n * p)
    rng = random.Random(f"keel-realmodel-customer-{seed}-{p}")
    poison = poison_rows(rm) if n_poison else []
    rows = [task.chat(e["prompt"], e["label"]) for e in task.examples(n - n_poison, seed, "train")]
    rows += [task.chat(r["prompt"], r["response"]) for r in rng.sample(poison, n_poison)]
    rng.shuffle(rows)
    return rows


def validation_dataset(n: int, seed: int) -> list[dict]:
    """Held-out sentiment rows (products never in training): the job's utility split."""
    return [task.chat(e["prompt"], e["label"]) for e in task.examples(n, seed, "eval")]
