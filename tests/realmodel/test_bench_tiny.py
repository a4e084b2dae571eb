"""End-to-end run of the real-model build and bench on a tiny random GGUF (slow: 4 min on 2 busy CPU cores).

A random tiny model answers nothing, so benign rows get a placeholder answer; every stage still runs:
conversion, self-distillation, alignment LoRA, masks, poisoned fine-tune through train_lora, SafeLoRA/NLSR/
FGSN, the repair/auto ladders, the output layout (each adapter loads with PeftModel on DIR/base)."""

from __future__ import annotations

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
    monkeypatch.setattr(bench, "fill_answers", fill)
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
            "--threads",
            "2",
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
