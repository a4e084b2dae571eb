"""The realignment methods a job can ask for: one registration per method, as PEFT's ``register_peft_method``.

A method is one module under :mod:`tuning.safety.methods` plus one :func:`register_method` line below. The module
declares

* ``Config``: its typed config (a frozen dataclass, JSON-serialisable with :func:`dataclasses.asdict`);
* ``apply(inputs: MethodInputs, cfg: Config) -> (Adapter, info)``: the method itself;
* ``default(seed) -> Strategy``: what a job asking for the method by name runs;
* optionally ``ladder(seed) -> list[Strategy]``: its rungs, weakest first, when ``auto`` (or the method itself, if
  registered with ``escalates=True``) climbs them; without one its ladder is ``[default(seed)]``.

Everything else reads this registry: the API's accepted names (:data:`METHOD_NAMES`), the controller's
candidates (:func:`strategies`), the dispatch of a :class:`Strategy` to its method (:func:`apply`), the report
and the benches. Standard library only at import, so the service can import it without torch: a method's module
is imported the first time a job uses it.

Besides the registered methods a job may ask for two policies:

* ``auto`` (the default) climbs the ladders of :data:`AUTO` in order, cheap mask-based methods first: NLSR (as
  published: ΔW_e = 1.9·ΔW_a), NLSR transplanting into every module, then with stronger references (β = 1.2 and
  1.5: 2.2 and 2.5·ΔW_a; the official code's A and B scaled by 2β: 3.24·ΔW_a), FGSN, then the ``repair``
  ladder. The adaptive controller (:mod:`tuning.safety.controller`) stops at the first rung that meets the
  harmfulness, utility and over-refusal targets; the report's ``trials`` list every rung tried and
  ``strength`` the one released. A rung that clearly fails costs little: its evaluation stops as soon as a
  target is proven missed.
* ``none``: no realignment; the adapter is evaluated and released as trained (only for tenants an operator
  granted it; see :mod:`core.tenants.service`). It is also what a base model without an alignment adapter gets
  (:func:`effective_method`).

``repair`` escalates on its own (SN-Tune-style repair from safety-neuron rows for one epoch to every row for
three epochs); ``nlsr``, ``fgsn``, ``safelora`` apply their default once and are checked against the same targets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import import_module
from types import ModuleType
from typing import Any


@dataclass(frozen=True)
class MethodInfo:
    """A registered method: its name, the module that implements it, whether asking for it climbs its ladder."""

    name: str
    module: str
    escalates: bool = False


_METHODS: dict[str, MethodInfo] = {}
POLICIES = ("auto", "none")


def register_method(name: str, module: str, escalates: bool = False) -> None:
    """Make ``name`` a realignment method implemented by ``module`` (see this module's docstring)."""
    if name in _METHODS or name in POLICIES:
        raise ValueError(f"realignment method {name!r} is already registered")
    _METHODS[name] = MethodInfo(name, module, escalates)


register_method("repair", "tuning.safety.methods.repair", escalates=True)
register_method("nlsr", "tuning.safety.methods.nlsr")
register_method("fgsn", "tuning.safety.methods.fgsn")
register_method("safelora", "tuning.safety.methods.safelora")

AUTO = ("nlsr", "fgsn", "repair")  # the ladders ``auto`` climbs, in this order
METHOD_NAMES = ("auto", *_METHODS, "none")  # what ``safety.realign`` accepts (the API validates against it)


def effective_method(requested: str, has_alignment_adapter: bool) -> str:
    """The method a job really runs: ``none`` when the base model has no alignment adapter (there is nothing to
    realign towards), else the one it asked for. The one place this rule lives."""
    return requested if has_alignment_adapter else "none"


def needs_alignment_adapter(method: str) -> bool:
    """Asked for by name, a method needs an alignment adapter; ``auto`` and ``none`` do without (as ``none``)."""
    return method not in POLICIES


@dataclass(frozen=True)
class Strategy:
    """One realignment attempt: the registered method it dispatches to (:func:`apply`), with which config."""

    method: str
    config: Any  # the method module's ``Config``
    label: str

    @property
    def params(self) -> dict:
        """The config as a JSON-serialisable dict (for trials and the report's ``strength``)."""
        return asdict(self.config)

    @property
    def strength(self) -> dict:
        """What the report calls the chosen strength: the label and the config."""
        return {"strategy": self.label, **self.params}


@dataclass
class MethodInputs:
    """What a method may read: the fine-tuned and alignment adapters, the safety masks, the loaded scoring model
    (a method that trains must copy it), the evaluation sets (safety corpus, screened replay rows), cooperative
    cancellation and a scratch directory removed after the stage."""

    ft: Any
    alignment: Any
    masks: dict = field(default_factory=dict)
    model: Any = None
    tok: Any = None
    sets: Any = None
    should_stop: Callable[[], bool] = lambda: False
    scratch: Callable[[], str] | None = None


def method_module(name: str) -> ModuleType:
    """The module implementing a registered method (imported on first use)."""
    if name not in _METHODS:
        raise ValueError(f"realignment method must be one of {tuple(_METHODS)}, got {name!r}")
    return import_module(_METHODS[name].module)


def apply(strategy: Strategy, inputs: MethodInputs) -> tuple[Any, dict]:
    """Run the strategy's method on ``inputs``: (realigned Adapter, info)."""
    mod = method_module(strategy.method)
    if not isinstance(strategy.config, mod.Config):
        raise TypeError(f"{strategy.label}: config {type(strategy.config).__name__} is not {strategy.method}'s Config")
    return mod.apply(inputs, strategy.config)


def ladder(name: str, seed: int = 0) -> list[Strategy]:
    """A method's rungs, weakest first (its default alone when it declares none)."""
    mod = method_module(name)
    return list(mod.ladder(seed)) if hasattr(mod, "ladder") else [mod.default(seed)]


def escalates(method: str) -> bool:
    """Whether the controller climbs ``method``'s strategies (``auto`` and methods registered so) rather than
    applying one once."""
    return method == "auto" or (method in _METHODS and _METHODS[method].escalates)


def strategies(method: str, seed: int = 0) -> list[Strategy]:
    """The strategies ``method`` tries, cheapest first (empty for ``none``); ValueError for an unknown name."""
    if method not in METHOD_NAMES:
        raise ValueError(f"realignment method must be one of {METHOD_NAMES}, got {method!r}")
    if method == "none":
        return []
    if method == "auto":
        return [s for name in AUTO for s in ladder(name, seed)]
    return ladder(method, seed) if escalates(method) else [method_module(method).default(seed)]
