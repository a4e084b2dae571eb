"""Realignment methods change exactly what they claim; masks; the controller's decisions; the registry."""

from __future__ import annotations

import pytest
import torch

from tuning.adapters import Adapter, a_key, b_key, read_adapter
from tuning.safety.common import short
from tuning.safety.controller import Scores, Tolerances, auto_realign
from tuning.safety.methods.fgsn import FgsnConfig, fgsn, reach
from tuning.safety.methods.nlsr import NlsrConfig, nlsr
from tuning.safety.methods.repair import RepairConfig
from tuning.safety.methods.safelora import SafeLoraConfig, safelora
from tuning.safety.registry import Strategy


def _perturbed(alignment: Adapter, seed: int = 0) -> Adapter:
    g = torch.Generator().manual_seed(seed)
    ft = alignment.clone()
    for k, v in ft.state.items():
        ft.state[k] = v + 0.05 * torch.randn(v.shape, generator=g)
    return ft


def _random_masks(ad: Adapter, density: float = 0.2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {f"nlsr/{k}": torch.rand(v.shape, generator=g) < density for k, v in ad.state.items()}


def test_nlsr_transplants_only_masked_entries_of_selected_modules(micro):
    align = read_adapter(micro["alignment"])
    ft = _perturbed(align)
    masks = _random_masks(ft)
    out, info = nlsr(ft, align, masks, NlsrConfig(seed=42))
    out2, _ = nlsr(ft, align, masks, NlsrConfig(seed=42))
    assert all(torch.equal(out.state[k], out2.state[k]) for k in out.state)  # seeded
    assert out.config == ft.config and all(out.state[k].shape == ft.state[k].shape for k in ft.state)
    changed = set(info["modules_changed"])
    assert 0 < len(changed) < len(ft.modules())
    for m in ft.modules():
        for key in (a_key(m), b_key(m)):
            diff = out.state[key] != ft.state[key]
            if m in changed:
                assert not (diff & ~masks[f"nlsr/{key}"]).any()  # only masked entries move
                ref = align.state[key] * (1.9 if key.endswith("lora_B.weight") else 1.0)
                assert torch.allclose(out.state[key][masks[f"nlsr/{key}"]], ref[masks[f"nlsr/{key}"]])
            else:
                assert not diff.any()


def test_safelora_projects_b_of_lowest_cosine_modules():
    a = torch.eye(2, 3)
    b_align = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    cfg = {"r": 2, "lora_alpha": 2, "target_modules": ["q_proj"]}
    m = "base_model.model.model.layers.0.self_attn.q_proj"
    align = Adapter({a_key(m): a, b_key(m): b_align}, cfg)
    ft = Adapter({a_key(m): a, b_key(m): torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])}, cfg)
    out, info = safelora(ft, align, SafeLoraConfig(num_proj_layers=1))
    v = b_align @ a
    c = v @ v.T / v.norm()
    assert torch.allclose(out.state[b_key(m)], c @ ft.state[b_key(m)])
    assert torch.equal(out.state[a_key(m)], a) and info["modules_changed"] == [m]


def test_fgsn_replaces_only_safety_rows_by_their_projection(micro):
    align = read_adapter(micro["alignment"])
    ft = _perturbed(align)
    m = ft.modules()[0]
    rows = torch.zeros(ft.pair(m)[1].shape[0], dtype=torch.bool)
    rows[:3] = True
    out, info = fgsn(ft, align, {f"fgsn/{short(m)}": rows}, FgsnConfig())
    b_old, b_new = ft.state[b_key(m)], out.state[b_key(m)]
    assert torch.equal(b_new[~rows], b_old[~rows]) and not torch.allclose(b_new[rows], b_old[rows])
    u, _, _ = torch.linalg.svd(align.delta(m), full_matrices=False)
    u = u[:, : align.config["r"]]
    assert torch.allclose(b_new[rows], (u @ u.T @ b_old)[rows], atol=1e-5)
    assert torch.equal(out.state[a_key(m)], ft.state[a_key(m)]) and info["neurons_changed"] == 3


def _lora(seed: int, modules: int = 2, out: int = 6, inp: int = 5, r: int = 2) -> Adapter:
    g = torch.Generator().manual_seed(seed)
    names = [f"base_model.model.model.layers.{i}.mlp.up_proj" for i in range(modules)]
    shapes = ((a_key, (r, inp)), (b_key, (out, r)))
    state = {k(m): torch.randn(shape, generator=g) for m in names for k, shape in shapes}
    return Adapter(state, {"r": r, "lora_alpha": 2 * r, "target_modules": ["up_proj"]})


def test_fgsn_reach_splits_the_change_at_the_alignment_column_space():
    align = _lora(0)
    via_a, outside, back = align.clone(), align.clone(), align.clone()
    for i, m in enumerate(align.modules()):
        a, b = align.pair(m)
        via_a.state[a_key(m)] = a + torch.randn(a.shape, generator=torch.Generator().manual_seed(i))
        u, _, _ = torch.linalg.svd(b, full_matrices=False)
        noise = torch.randn(b.shape, generator=torch.Generator().manual_seed(10 + i))
        outside.state[b_key(m)] = b + noise - u @ u.T @ noise  # the change's columns are orthogonal to B_align's
        back.state[b_key(m)] = 0.5 * b  # half the alignment walked back
    r_a, r_out, r_back = reach(via_a, align), reach(outside, align), reach(back, align)
    assert r_a["in_subspace"] > 0.999 and r_out["in_subspace"] < 1e-3
    assert r_back == {"in_subspace": 1.0, "undo": 1.0, "undo_in_subspace": 1.0}
    assert abs(r_out["undo"]) < 1e-3 and reach(align, align)["in_subspace"] == 0.0
    mixed = _lora(1)
    every_row = {f"fgsn/{short(m)}": torch.ones(6, dtype=torch.bool) for m in mixed.modules()}
    projected, _ = fgsn(mixed, align, every_row, FgsnConfig())
    assert 0.05 < reach(mixed, align)["in_subspace"] < 0.95
    assert reach(projected, align)["in_subspace"] > 0.999  # a full mask leaves only the part inside


def _fake(scores: dict[str, Scores]):
    return (lambda s: (s.label, {"label": s.label})), (lambda adapter: scores[adapter])


def test_controller_decisions():
    ref, tol = Scores(hs=2, fa=0, over_refusal=5), Tolerances()
    cands = [Strategy("repair", RepairConfig(epochs=k), f"k{k}") for k in (1, 2, 4)]
    apply, evaluate = _fake({"k1": Scores(60, 90, 5), "k2": Scores(5, 89.5, 6), "k4": Scores(1, 50, 5)})
    res = auto_realign(cands, apply, evaluate, before=Scores(80, 90, 5), reference=ref, tol=tol)
    assert res.passed and res.chosen.label == "k2" and [t["strategy"] for t in res.trials] == ["k1", "k2"]
    res = auto_realign(cands, apply, evaluate, before=Scores(4, 90, 5), reference=ref, tol=tol)
    assert res.passed and res.chosen is None and "not needed" in res.reason
    apply, evaluate = _fake({"k1": Scores(60, 90, 5), "k2": Scores(30, 80, 6), "k4": Scores(1, 50, 5)})
    res = auto_realign(cands, apply, evaluate, before=Scores(80, 90, 5), reference=ref, tol=tol)
    assert not res.passed and len(res.trials) == 3 and "fa" in res.reason
    # over-refusal: above the target (5 + 5) but under the cap (5 + 15) passes with a warning, choosing the
    # least over-refusing safe and useful trial; above the cap fails
    apply, evaluate = _fake({"k1": Scores(3, 90, 19), "k2": Scores(4, 90, 12), "k4": Scores(1, 90, 30)})
    res = auto_realign(cands, apply, evaluate, before=Scores(80, 90, 5), reference=ref, tol=tol)
    assert res.passed and res.chosen.label == "k2" and "warning" in res.reason and len(res.trials) == 3
    apply, evaluate = _fake({"k1": Scores(3, 90, 21), "k2": Scores(60, 90, 5), "k4": Scores(1, 90, 30)})
    res = auto_realign(cands, apply, evaluate, before=Scores(80, 90, 5), reference=ref, tol=tol)
    assert not res.passed and "over_refusal_cap" in res.reason


def test_masks_have_configured_density_and_hooks_are_removed(micro, tmp_path):
    from pathlib import Path

    from tuning.modeling import load_model
    from tuning.rows import read_jsonl
    from tuning.safety import activations, compute_safety_masks, load_masks

    corpus = read_jsonl(Path(micro["data"], "safety_corpus.jsonl").read_text())
    stats = compute_safety_masks(micro["base"], micro["alignment"], corpus, "all", {"p_sr": 0.8}, str(tmp_path / "m"))
    tensors, meta = load_masks(str(tmp_path / "m"))
    nl = [v for k, v in tensors.items() if k.startswith("nlsr/")]
    density = sum(int(v.sum()) for v in nl) / sum(v.numel() for v in nl)
    assert abs(density - 0.2) < 0.05 and meta["fgsn_layers"] and stats["compute_s"] >= 0
    model, tok = load_model(micro["base"], device="cpu")
    try:
        with activations.capture_gram(model, ("q_proj",), {}):
            model(torch.tensor([[1, 2, 3]]))  # no "mask" set: the hook raises inside forward
    except KeyError:
        pass
    assert all(not m._forward_hooks for m in model.modules())


def test_plot_report_draws_every_kind_of_report(tmp_path):
    from tuning.safety.plot import plot_report

    base = {
        "reference": {"hs": 5, "fa": 0, "over_refusal": 9},
        "before": {"hs": 100, "fa": 100, "over_refusal": 0},
        "after": {"hs": 4, "fa": 100, "over_refusal": 16},
        "targets": {"hs_max": 10, "fa_min": 99, "over_refusal_max": 14, "over_refusal_cap": 24},
    }
    reports = [
        {
            **base,
            "method": "auto",
            "passed": True,
            "strength": {"strategy": "x"},
            "trials": [{"strategy": "x", "scores": {"hs": 4}, "checks": {"hs": True}}],
        },
        {**base, "method": "nlsr", "passed": False, "trials": [], "per_module_similarity": {"layers.0.q": 0.5}},
        {**base, "method": "auto", "passed": True, "trials": [], "reason": "not needed: already safe"},
    ]
    for i, report in enumerate(reports):
        plot_report(report, str(tmp_path / f"{i}.png"))
        assert (tmp_path / f"{i}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_partial_evaluation_fails_exactly_the_checks_a_full_one_fails(monkeypatch):
    """Scores evaluated batch by batch stop once a check is proven failed; for every limit the checks of the
    partial scores equal those of the full evaluation, and a clearly failing trial costs one batch."""
    import itertools
    import math

    from tuning import evaluate
    from tuning.safety import scoring
    from tuning.safety.controller import Limits, checks, limits
    from tuning.safety.scoring import EvalSets

    complies = {f"h{i}" for i in (0, 1, 2, 3, 7, 11)} | {f"b{i}" for i in (0, 5, 6)}  # else refuses
    calls: list[list[str]] = []

    def fake_generate(model, tok, prompts, **kw):
        calls.append(list(prompts))
        return ["Sure, here" if p in complies else "I cannot" for p in prompts]

    monkeypatch.setattr(scoring, "SCREEN", 4)
    monkeypatch.setattr(evaluate, "generate", fake_generate)
    monkeypatch.setattr(
        evaluate, "classification_correct", lambda m, t, ex, labels, **kw: [e["label"] == "zorp" for e in ex]
    )
    sets = EvalSets(
        harmful_prompts=[f"h{i}" for i in range(12)],
        benign_prompts=[f"b{i}" for i in range(10)],
        task_examples=[{"prompt": f"t{i}", "label": "zorp" if i % 3 else "blick"} for i in range(9)],
        labels=["zorp", "blick"],
        batch_size=4,
    )
    full = scoring.score(None, None, None, sets)
    assert (full.hs, full.over_refusal, full.fa) == (50.0, 70.0, pytest.approx(200 / 3)) and not full.rejected
    tol, rejected = Tolerances(), set()
    for hs_ref, fa_before, or_ref in itertools.product((0, 20, 45, 60), (60, 70, 90), (10, 40, 55, 80)):
        ref, before = Scores(hs_ref, 0, or_ref), Scores(90, fa_before, 0)
        part = scoring.score(None, None, None, sets, limits(before, ref, tol))
        want, got = checks(full, before, ref, tol), checks(part, before, ref, tol)
        assert all(g is None or g == w for g, w in zip(got.values(), want.values(), strict=True))
        assert all(got.values()) == all(want.values())
        if part.rejected:
            assert got[part.rejected] is False and want[part.rejected] is False
            rejected.add(part.rejected)
        else:
            assert part == full
    assert rejected == {"hs", "over_refusal_cap", "fa"}  # every early stop was exercised
    calls.clear()
    part = scoring.score(None, None, None, sets, Limits(hs_max=10.0, fa_min=0.0, over_refusal_cap=100.0))
    assert part.rejected == "hs" and part.sample == {"hs": 4} and part.hs == 100.0 and math.isnan(part.fa)
    assert calls == [["h0", "h1", "h2", "h3"]]  # 4 harmful answers of 12 already exceed 10 %
    assert part.rounded() == {"hs": 100.0, "fa": None, "over_refusal": None, "rejected": "hs", "sample": {"hs": 4}}
