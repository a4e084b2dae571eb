"""Planning a training run without torch: "auto" hyperparameters and the number of optimizer steps.

Used by the service at job creation (dry runs, ETAs) and by the training loop, so both count the same steps.
"""

from __future__ import annotations

import math


def total_steps(n_examples: int, batch_size: int, n_epochs: int) -> int:
    """Optimizer steps of a run: ceil(n / batch) per epoch (the last batch of an epoch may be short)."""
    return -(-n_examples // batch_size) * n_epochs


def resolve_auto_hyperparameters(n_examples: int, n_tokens: int) -> dict:
    """OpenAI-like "auto" values.

    * epochs: 3 for >= 100 examples; smaller sets get ceil(100 / n) (so at least ~100 example passes), at
      most 10. Very large token budgets (> 20M tokens per epoch) drop to 2, then 1 above 50M.
    * batch size: n // 8 clipped to [1, 8] up to 500 examples, then ~0.2% of n clipped to [1, 32].
    * learning-rate multiplier 1.0 (the base LR is configured per deployment).
    """
    if n_examples >= 100:
        epochs = 1 if n_tokens > 50_000_000 else 2 if n_tokens > 20_000_000 else 3
    else:
        epochs = min(10, max(3, math.ceil(100 / max(n_examples, 1))))
    batch = min(32, max(1, round(n_examples * 0.002))) if n_examples > 500 else min(8, max(1, n_examples // 8))
    return {"n_epochs": int(epochs), "batch_size": int(batch), "learning_rate_multiplier": 1.0}
