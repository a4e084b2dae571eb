"""The realignment registry (names, configs, ladders) and the torch-free import surface the service uses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tuning.safety import registry
from tuning.safety.registry import METHOD_NAMES, Strategy, effective_method, strategies

ROOT = Path(__file__).resolve().parents[2]


def test_light_modules_import_without_torch():
    code = (
        "import sys, tuning, tuning.rows, tuning.plan, tuning.specs, tuning.interfaces, tuning.safety, "
        "tuning.safety.registry; from tuning.safety import Strategy; "
        "print(sorted(m for m in ('torch', 'transformers', 'peft', 'safetensors') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_method_names_are_the_policies_around_the_registered_methods():
    registered = tuple(registry._METHODS)
    assert ("auto", *registered, "none") == METHOD_NAMES and len(set(METHOD_NAMES)) == len(METHOD_NAMES)
    assert {"repair", "nlsr", "fgsn", "safelora"} <= set(registered) and "keel" not in METHOD_NAMES
    assert set(registry.AUTO) <= set(registered)
    with pytest.raises(ValueError):
        registry.register_method("nlsr", "tuning.safety.methods.nlsr")  # one registration per name
    with pytest.raises(ValueError):
        registry.register_method("auto", "tuning.safety.methods.nlsr")


@pytest.mark.parametrize("name", list(registry._METHODS))
def test_every_registered_method_declares_config_apply_and_default(name):
    mod = registry.method_module(name)
    assert callable(mod.apply) and isinstance(mod.Config(), mod.Config)
    rungs = registry.ladder(name, seed=5)
    assert rungs[0] == mod.default(5) and all(s.method == name and isinstance(s.config, mod.Config) for s in rungs)
    assert all(s.params == json.loads(json.dumps(s.params)) for s in rungs)  # the report stores them as JSON
    assert strategies(name, seed=5) == (rungs if registry.escalates(name) else [mod.default(5)])


def test_a_strategy_dispatches_to_its_method_and_only_with_its_config():
    nlsr_cfg = strategies("nlsr")[0].config
    with pytest.raises(TypeError):
        registry.apply(Strategy("safelora", nlsr_cfg, "mismatched"), registry.MethodInputs(None, None))
    with pytest.raises(ValueError):
        registry.apply(Strategy("keel", nlsr_cfg, "unknown"), registry.MethodInputs(None, None))


def test_no_alignment_adapter_means_none():
    assert [effective_method(m, True) for m in METHOD_NAMES] == list(METHOD_NAMES)
    assert {effective_method(m, False) for m in METHOD_NAMES} == {"none"}
    assert [m for m in METHOD_NAMES if registry.needs_alignment_adapter(m)] == list(registry._METHODS)


def test_method_names_and_ladders():
    auto, ladder = strategies("auto", seed=3), strategies("repair", seed=3)
    # auto: the cheap mask-based methods first, then the repair ladder
    assert [s.method for s in auto] == ["nlsr"] * 5 + ["fgsn"] + ["repair"] * 4 and auto[6:] == ladder
    assert auto[0] == strategies("nlsr", seed=3)[0] and auto[5] == strategies("fgsn", seed=3)[0]
    # NLSR escalates: published selection, then every module with ever stronger references
    assert [(s.config.all_modules, s.config.beta, s.config.code_faithful, s.config.seed) for s in auto[:5]] == [
        (False, 0.9, False, 3),
        (True, 0.9, False, 3),
        (True, 1.2, False, 3),
        (True, 1.5, False, 3),
        (True, 0.9, True, 3),
    ]
    assert [s.config.rows for s in ladder] == ["neurons", "all", "all", "all"]
    assert [s.config.epochs for s in ladder] == [1, 1, 2, 3] and all(s.config.seed == 3 for s in ladder)
    assert strategies("none") == []
    for name in ("nlsr", "fgsn", "safelora"):
        (only,) = strategies(name, seed=3)
        assert only.method == name
    assert strategies("nlsr", seed=3)[0].config.seed == 3
    for name in ("keel", "bogus"):
        with pytest.raises(ValueError):
            strategies(name)


def test_strategy_params_are_the_typed_config_as_json():
    s = strategies("repair", seed=1)[0]
    assert s.params == json.loads(json.dumps(s.params)) and s.params["rows"] == "neurons"
    assert s.strength == {"strategy": s.label, **s.params}
    from tuning.safety.methods.repair import RepairConfig

    assert RepairConfig().lr == 2e-3 and RepairConfig().max_grad_norm == 0.3
