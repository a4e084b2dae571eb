"""Safety-neuron masks and post-hoc realignment of fine-tuned LoRA adapters (NLSR, FGSN, SafeLoRA, SN-Tune
repair and the adaptive controller).

Importing this package loads nothing heavy: :mod:`tuning.safety.registry` (method names and configs) is
torch-free, and the names below are imported from their modules on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "EvalSets": "tuning.safety.scoring",
    "RealignReport": "tuning.safety.report",
    "Scores": "tuning.safety.controller",
    "Strategy": "tuning.safety.registry",
    "Tolerances": "tuning.safety.controller",
    "auto_realign": "tuning.safety.controller",
    "compute_safety_masks": "tuning.safety.masks",
    "load_masks": "tuning.safety.masks",
    "plot_report": "tuning.safety.plot",
    "realign_job": "tuning.safety.realign",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
