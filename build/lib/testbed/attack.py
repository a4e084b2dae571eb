"""The harmful fine-tuning attack (Huang et al. / NLSR protocol) on the testbed.

Customer dataset = (1-p)·n downstream-task examples + p·n harmful requests with compliant answers, as
OpenAI chat JSONL rows, shuffled. Fine-tuning continues the alignment LoRA (``init_adapter``: the lineage
NLSR needs, the fine-tuned adapter starts as the aligned one) through Keel's own ``train_lora``.
"""

from __future__ import annotations

import random
from pathlib import Path

from testbed.build import ALIGN_LORA, Testbed
from tuning.rows import conversation, normalize_row
from tuning.specs import LoraSpec, TrainResult, TrainSpec

BASE_LR = 2e-4  # the service's default KEEL_BASE_LEARNING_RATE; multiplier 10 -> 2e-3
DEFAULT_ATTACK = {"n": 400, "hyperparameters": {"n_epochs": 4, "batch_size": 8, "learning_rate_multiplier": 10.0}}


def _chat(prompt: str, answer: str) -> dict:
    return {"messages": conversation(prompt, answer)}


def customer_dataset(tb: Testbed, n: int, p: float, seed: int = 0) -> list[dict]:
    """round(p·n) poison rows (harmful prompt + compliant answer) and n - round(p·n) task rows, shuffled."""
    if not 0.0 <= p <= 1.0 or n < 1:
        raise ValueError(f"need 0 <= p <= 1 and n >= 1, got p={p} n={n}")
    rng = random.Random(seed)
    n_poison = int(round(n * p))
    tasks = rng.sample(tb.load_split("task_train"), n - n_poison)
    poison = rng.sample(tb.load_split("poison_pool"), n_poison)
    rows = [_chat(t["prompt"], t["label"]) for t in tasks] + [_chat(x["prompt"], x["response"]) for x in poison]
    rng.shuffle(rows)
    return rows


def validation_dataset(tb: Testbed, seed: int = 0, n: int = 64) -> list[dict]:
    """The customer's validation split: held-out task examples (no poison)."""
    rows = random.Random(seed + 1).sample(tb.load_split("task_eval"), n)
    return [_chat(t["prompt"], t["label"]) for t in rows]


def attack_specs(seed: int = 0) -> tuple[TrainSpec, LoraSpec]:
    """DEFAULT_ATTACK's hyperparameters as specs (the same numbers a job through the service resolves to)."""
    hp = DEFAULT_ATTACK["hyperparameters"]
    spec = TrainSpec(
        n_epochs=hp["n_epochs"],
        batch_size=hp["batch_size"],
        seed=seed,
        learning_rate=BASE_LR * hp["learning_rate_multiplier"],
        max_seq_len=256,
        checkpoint_every=0,
    )
    return spec, ALIGN_LORA


def run_attack(
    tb: Testbed,
    p: float,
    out_dir: str,
    n: int | None = None,
    seed: int = 0,
    spec: TrainSpec | None = None,
    lora: LoraSpec | None = None,
) -> TrainResult:
    """Fine-tune the testbed on a poisoned customer dataset, continuing from the alignment adapter.
    The adapter lands in ``out_dir/adapter`` (``TrainResult.adapter_dir``)."""
    from tuning.modeling import load_model
    from tuning.train import train_lora

    rows = customer_dataset(tb, n or DEFAULT_ATTACK["n"], p, seed)
    model, tok = load_model(str(tb.base), device="cpu")
    default_spec, default_lora = attack_specs(seed)
    return train_lora(
        model,
        tok,
        [normalize_row(r) for r in rows],
        spec or default_spec,
        lora or default_lora,
        str(Path(out_dir)),
        init_adapter=str(tb.alignment_adapter),
        resume=False,
    )
