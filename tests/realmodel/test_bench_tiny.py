"""End-to-end run of the real-model build and bench on a tiny random GGUF and a tenth of the corpus (slow).

A random tiny model answers nothing, so benign rows get a placeholder answer; every stage still runs:
conversion, self-distillation, alignment LoRA, masks, poisoned fine-tune through train_lora, SafeLoRA/NLSR/
FGSN, the repair/auto ladders, the output layout (each adapter loads with PeftModel on DIR/base)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("gguf")
pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_build_and_bench_on_a_tiny_gguf(tmp_path, monkeypatch):
    from test_gguf import write_tiny_llama_gguf

    import realmodel.build as build
    from realmodel import corpus

    # a small corpus and one alignment epoch: the tiny model learns nothing either way, and the full corpus
    # (1,400 training rows, 3 epochs) took over 15 min on a shared 2-core machine
    small = {k: max(4, v // 10) for k, v in corpus.SIZES.items() if k != "borderline_repeats"}
    monkeypatch.setattr(corpus, "SIZES", {**small, "borderline_repeats": 1})
    monkeypatch.setattr(build, "ALIGN", dataclasses.replace(build.ALIGN, n_epochs=1))

    src = tmp_path / "tiny.gguf"
    write_tiny_llama_gguf(src)
    monkeypatch.setenv("KEEL_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("KEEL_REALMODEL_DIR", str(tmp_path / "rm"))
    orig = build.fill_answers

    def fill(rows, answers):
        return orig(rows, {k: v if any(c.isalnum() for c in v) else "Sure. Here it is." for k, v in answers.items()})

    monkeypatch.setattr(build, "fill_answers", fill)
    spec = importlib.util.spec_from_file_location("bench_real_model", ROOT / "bench" / "real_model.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    import realmodel.attack as attack

    monkeypatch.setattr(attack, "fill_answers", fill)  # the poison pool's answers (was bench's: it has none)
    out = tmp_path / "out"
    bench.main(
        [
            "--gguf",
            str(src),
            "--p",
            "0.1",
            "--n",
            "24",
            "--n-eval",
            "4",
            "--n-task-eval",
            "4",
            "--repair-max",
            "16",
            "--n-audit",
            "8",
            "--threads",
            "2",
            "--audit-rows",
            "auto",
            "repair",
            "--out",
            str(out),
        ]
    )
    table = json.loads((out / "table.json").read_text())
    assert [r["row"] for r in table["rows"]] == ["aligned", "fine-tuned", "safelora", "nlsr", "fgsn", "repair", "auto"]
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    for name in ("finetuned", "auto", "nlsr", "fgsn", "safelora", "repair"):
        PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(out / "base"), out / "p0.1" / name)
    assert (out / "aligned" / "adapter_config.json").exists() and (out / "table.png").exists()
    # the audit split (corpus v7): fine-tuned, aligned and the --audit-rows ladders carry Wilson intervals on it
    audited = [r for r in table["rows"] if r.get("audit")]
    assert [r["row"] for r in audited] == ["aligned", "fine-tuned", "repair", "auto"]
    assert table["eval"]["audit_harmful"] == 8
    for r in audited:
        for metric in ("hs", "fa", "over_refusal"):
            a = r["audit"][metric]
            assert a["low"] <= a["value"] <= a["high"] and a["n"] == (4 if metric == "fa" else 8)
        split = r["audit"]["over_refusal_by_split"]
        assert set(split) <= {"audit_benign", "audit_borderline"} and sum(v["n"] for v in split.values()) == 8
        assert len(r["audit"]["refused"]) == round(r["audit"]["over_refusal"]["value"] * 8 / 100)
    # the other attack families (same build, one cheap method each): each builds its data and runs
    out2 = tmp_path / "out2"
    args = ["--gguf", str(src), "--p", "0.1", "--n", "24", "--n-eval", "4", "--n-task-eval", "4", "--n-audit", "8"]
    bench.main([*args, "--family", "benign", "identity", "other-hand", "--methods", "nlsr", "--out", str(out2)])
    rows = json.loads((out2 / "table.json").read_text())["rows"]
    assert [(r.get("family"), r["p"], r["row"]) for r in rows if r["row"] == "fine-tuned"] == [
        ("benign", 0.0, "fine-tuned"),
        ("identity", 0.1, "fine-tuned"),
        ("other-hand", 0.1, "fine-tuned"),
    ]
    assert all(r["audit"]["hs"]["n"] == 8 for r in rows if r["row"] == "fine-tuned")
    for d in ("benign-p0.0", "identity-p0.1", "other-hand-p0.1"):
        assert (out2 / d / "finetuned" / "adapter_config.json").exists() and (out2 / d / "nlsr").exists()
    assert (out2 / "table-identity.png").exists() and (out2 / "table-other-hand.png").exists()
    # the FGSN sweep (issue 21 item 4) on the poison run's fine-tuned adapter: two settings, resumable
    spec = importlib.util.spec_from_file_location("bench_fgsn_sweep", ROOT / "bench" / "fgsn_sweep.py")
    sweep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sweep)
    ft = str(out / "p0.1" / "finetuned")
    base = ["--gguf", str(src), "--finetuned", ft, "--train-s", "10", "--n-eval", "4", "--n-task-eval", "4"]
    grid = ["--q", "0.2", "--p-benign", "0.0", "--layers", "all", "--out", str(tmp_path / "fgsn")]
    sweep.main([*base, *grid, "--levels", "single"])
    sweep.main([*base, *grid, "--levels", "single", "multi", "random"])  # resumes: only the new settings run
    res = json.loads((tmp_path / "fgsn" / "fgsn_sweep.json").read_text())
    assert [r["level"] for r in res["settings"]] == ["single", "multi", "random"]
    single, multi, rand = res["settings"]
    assert 0.1 < rand["density"] < 0.3  # the control: q = 0.2 of the rows, drawn at random
    assert 0 < single["rows"] <= multi["rows"] and single["density"] > 0.1  # q = 0.2 of every layer's rows
    assert {"hs", "fa", "over_refusal", "checks", "passed", "ratio"} <= set(single)
    assert set(res["reach"]) == {"in_subspace", "undo", "undo_in_subspace"} and 0 <= res["reach"]["in_subspace"] <= 1
