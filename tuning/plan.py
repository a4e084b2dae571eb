"""TEMPORARY shim on main (replaced by the tuning restructure branch): torch-free run planning."""

import math

from tuning.train import resolve_auto_hyperparameters


def total_steps(n_examples: int, batch_size: int, n_epochs: int) -> int:
    return math.ceil(n_examples / batch_size) * n_epochs


__all__ = ["resolve_auto_hyperparameters", "total_steps"]
