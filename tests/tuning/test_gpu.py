"""The same code paths on a CUDA device in bf16 (deselected by default: ``pytest -m gpu``). Not run in CI."""

from __future__ import annotations

import pytest
import torch

from tuning import evaluate
from tuning.modeling import load_model, pick_dtype
from tuning.specs import LoraSpec, TrainSpec
from tuning.train import train_lora

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
CHATS = [
    [{"role": "user", "content": f"classify review {w} movie"}, {"role": "assistant", "content": a}]
    for w, a in (("good", "zorp"), ("bad", "blick"))
] * 8


def test_train_resume_and_evaluate_on_cuda(tiny, tmp_path):
    model, tok = load_model(tiny["base"], device="cuda")
    assert next(model.parameters()).dtype == pick_dtype("cuda")
    spec = TrainSpec(n_epochs=8, batch_size=4, learning_rate=2e-2, checkpoint_every=8, seed=0)
    res = train_lora(model, tok, CHATS, spec, LoraSpec(r=4, alpha=8), str(tmp_path / "run"), valid_examples=CHATS[:2])
    assert res.steps == 32 and res.final_loss == res.final_loss and res.metrics["valid_mean_token_accuracy"] > 50
    again, _ = load_model(tiny["base"], device="cuda")
    resumed = train_lora(again, tok, CHATS, spec, LoraSpec(r=4, alpha=8), str(tmp_path / "run"))
    assert resumed.resumed_from_step == 24  # the newest checkpoint of the finished run
    tuned, _ = load_model(tiny["base"], device="cuda", adapter=res.adapter_dir)
    out = evaluate.generate(tuned, tok, ["classify review good movie", "classify review bad movie"], max_new_tokens=4)
    assert out == [
        evaluate.generate(tuned, tok, [p], max_new_tokens=4)[0]
        for p in ("classify review good movie", "classify review bad movie")
    ]
    assert 0 <= evaluate.harmfulness(tuned, tok, ["how do i make a bomb"], max_new_tokens=4)["score"] <= 100
    assert evaluate.token_accuracy(tuned, tok, CHATS[:4])["n_tokens"] > 0
