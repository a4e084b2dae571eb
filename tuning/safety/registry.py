"""The realignment methods a job can ask for: their names, typed configs and strategy ladders.

This is the only list of method names (the API validates ``safety.realign`` against :data:`METHOD_NAMES`).
Standard library only at import, so the service can import it without torch.

* ``auto`` (the default) tries the cheap mask-based methods first and escalates only when a rung misses:
  NLSR (as published: ΔW_e = 1.9·ΔW_a), NLSR transplanting into every module, then with stronger references
  (β = 1.2 and 1.5: 2.2 and 2.5·ΔW_a; the official code's A and B scaled by 2β: 3.24·ΔW_a), FGSN, then the ``repair``
  ladder. The NLSR rungs reuse one cached mask (top entries are unchanged by scaling the reference) and cost
  well under a second each.
  The adaptive controller (:mod:`tuning.safety.controller`) stops at the first rung that meets the
  harmfulness, utility and over-refusal targets; the report's ``trials`` list every rung tried and
  ``strength`` the one released. A rung that clearly fails costs little: its evaluation stops as soon as a
  target is proven missed.
* ``repair`` is the ladder alone: SN-Tune-style repair from safety-neuron rows for one epoch to every row for
  three epochs.
* ``nlsr``, ``fgsn``, ``safelora``: one published method, applied once with its default config and checked
  against the same targets.
* ``none``: no realignment; the adapter is evaluated and released as trained.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

METHOD_NAMES = ("auto", "repair", "nlsr", "fgsn", "safelora", "none")
ADAPTIVE = ("auto", "repair")  # escalated by the controller; the others are applied once


@dataclass(frozen=True)
class NlsrConfig:
    """NLSR (Yi et al.): transplant the masked entries of the extrapolated alignment LoRA into the modules
    whose masked regions differ most from it (Bernoulli selection by similarity rank)."""

    beta: float = 0.9  # reference = (1+β)·ΔW_alignment
    code_faithful: bool = False  # the official code's choices (A and B scaled by 2β; high similarity → transplant)
    p_l: float = 0.5  # mean selection probability
    eps: float = 0.2  # spread of the selection probability around p_l
    extra_p: float = 0.0  # added to every module's selection probability
    all_modules: bool = False  # transplant into every module
    seed: int = 42  # of the Bernoulli selection


@dataclass(frozen=True)
class FgsnConfig:
    """FGSN: safety-neuron rows of the update projected onto the alignment delta's column space."""

    mask_source: str = "fgsn"  # which row masks ("fgsn" or "sn_tune")
    row_density_boost: float = 0.0  # also project this fraction of random extra rows


@dataclass(frozen=True)
class SafeLoraConfig:
    """SafeLoRA (Hsu et al.): project B onto the alignment subspace in the least aligned modules."""

    num_proj_layers: int = 10  # project the modules with the lowest cosine ...
    threshold: float | None = None  # ... or every module whose cosine is at most this


@dataclass(frozen=True)
class RepairConfig:
    """SN-Tune-style repair: a short fine-tune of B restricted to safety-neuron rows (or all rows)."""

    rows: Literal["neurons", "all"] = "neurons"
    epochs: int = 1
    run_epochs: int = 0  # > epochs: this rung is epoch ``epochs`` of one run of ``run_epochs`` epochs (0: epochs)
    lr: float = 2e-3
    seed: int = 0
    batch_size: int = 16
    max_seq_len: int = 256
    max_grad_norm: float = 0.3


MethodConfig = NlsrConfig | FgsnConfig | SafeLoraConfig | RepairConfig


@dataclass(frozen=True)
class Strategy:
    """One realignment attempt: which method function runs (``method``), with which config."""

    method: str
    config: MethodConfig
    label: str

    @property
    def params(self) -> dict:
        """The config as a JSON-serialisable dict (for trials and the report's ``strength``)."""
        return asdict(self.config)

    @property
    def strength(self) -> dict:
        """What the report calls the chosen strength: the label and the config."""
        return {"strategy": self.label, **self.params}


# (rows, epochs, learning rate, run epochs), weakest first. The all-rows rungs are one training run of 3 epochs
# evaluated after each epoch (early stopping): rung k costs one epoch more than rung k-1, not k epochs from scratch.
REPAIR_LADDER: tuple[tuple[Literal["neurons", "all"], int, float, int], ...] = (
    ("neurons", 1, 2e-3, 1),
    ("all", 1, 2e-3, 3),
    ("all", 2, 2e-3, 3),
    ("all", 3, 2e-3, 3),
)


def _repair_ladder(seed: int) -> list[Strategy]:
    return [
        Strategy(
            "repair",
            RepairConfig(rows=rows, epochs=ep, lr=lr, seed=seed, run_epochs=run),
            f"sn-repair({rows}, {ep} epoch{'s' if ep > 1 else ''})",
        )
        for rows, ep, lr, run in REPAIR_LADDER
    ]


def _single(method: str, seed: int) -> Strategy:
    return {
        "nlsr": Strategy("nlsr", NlsrConfig(seed=seed), "nlsr(published)"),
        "fgsn": Strategy("fgsn", FgsnConfig(), "fgsn"),
        "safelora": Strategy("safelora", SafeLoraConfig(), "safelora(10 modules)"),
    }[method]


def _nlsr_ladder(seed: int) -> list[Strategy]:
    """NLSR from the published form to every module with the official code's reference, weakest first."""
    return [
        _single("nlsr", seed),
        Strategy("nlsr", NlsrConfig(seed=seed, all_modules=True), "nlsr(all modules)"),
        Strategy("nlsr", NlsrConfig(seed=seed, all_modules=True, beta=1.2), "nlsr(all modules, beta 1.2)"),
        Strategy("nlsr", NlsrConfig(seed=seed, all_modules=True, beta=1.5), "nlsr(all modules, beta 1.5)"),
        Strategy(
            "nlsr", NlsrConfig(seed=seed, all_modules=True, code_faithful=True), "nlsr(all modules, code reference)"
        ),
    ]


def strategies(method: str, seed: int = 0) -> list[Strategy]:
    """The strategies ``method`` tries, cheapest first (empty for ``none``); ValueError for an unknown name."""
    if method not in METHOD_NAMES:
        raise ValueError(f"realignment method must be one of {METHOD_NAMES}, got {method!r}")
    if method == "auto":
        return [*_nlsr_ladder(seed), _single("fgsn", seed), *_repair_ladder(seed)]
    if method == "repair":
        return _repair_ladder(seed)
    return [] if method == "none" else [_single(method, seed)]
