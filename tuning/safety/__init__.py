"""Safety-neuron masks and post-hoc realignment of fine-tuned LoRA adapters (NLSR, FGSN, SafeLoRA, Keel)."""
from tuning.safety.controller import Scores, Strategy, Tolerances, auto_realign
from tuning.safety.masks import compute_safety_masks, load_masks
from tuning.safety.realign import RealignReport, plot_report, realign_job
from tuning.safety.scoring import EvalSets

__all__ = ["EvalSets", "RealignReport", "Scores", "Strategy", "Tolerances", "auto_realign", "compute_safety_masks",
           "load_masks", "plot_report", "realign_job"]
