"""Training memory bounded by design (issue #18): micro-batches cut by a token budget with gradient accumulation,
no dense attention mask on unpadded micro-batches, activation checkpointing, the CUDA path emulated on the CPU,
and the torch-free memory plan."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch

from tuning import plan
from tuning.interfaces import NullProgress
from tuning.lora import attach_lora
from tuning.modeling import load_model
from tuning.plan import ModelShape, estimate_peak_memory_bytes, lora_param_count, micro_batches
from tuning.specs import LoraSpec, TrainSpec
from tuning.train import TrainLoop, _encode_all, _pad_id, train_lora

LORA = LoraSpec(r=4, alpha=8)
WORDS = ["the", "movie", "film", "sun", "rain", "cats", "dogs", "zorp", "blick"]


def chats(n: int, seed: int = 0, filler: tuple[int, int] = (0, 12), answer: tuple[int, int] = (1, 6)) -> list:
    """Chats whose prompts and answers vary in length, so rows carry different numbers of labelled tokens
    (a per-micro-batch mean would then differ from the batch's mean)."""
    rng = random.Random(seed)
    return [
        [
            {"role": "user", "content": " ".join(rng.choice(WORDS) for _ in range(rng.randint(*filler)))},
            {"role": "assistant", "content": " ".join(rng.choice(WORDS) for _ in range(rng.randint(*answer)))},
        ]
        for _ in range(n)
    ]


class Recorder(NullProgress):
    def __init__(self) -> None:
        self.metrics: list[dict] = []

    def on_step(self, step, total, metrics):
        self.metrics.append(dict(metrics))


class Forwards:
    """What the decoder was called with: (batch rows, width, attention_mask given, position_ids given)."""

    def __init__(self, model) -> None:
        self.calls: list[tuple[int, int, bool, bool]] = []
        decoder = model.get_base_model().model
        self.handle = decoder.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        ids = kwargs["input_ids"]
        has_pos = kwargs.get("position_ids") is not None
        self.calls.append((ids.shape[0], ids.shape[1], kwargs.get("attention_mask") is not None, has_pos))


def _loop(tiny, data, **spec_kw):
    """One epoch of TrainLoop with plain SGD at lr 1 and no clipping: the weight change is the gradient itself."""
    model, tok = load_model(tiny["base"], device="cpu")
    peft_model = attach_lora(model, LORA, tiny["alignment"])
    peft_model.train()
    encoded, _ = _encode_all(tok, data, 512)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    layout = spec_kw.pop("layout", "padded")
    kw = {"n_epochs": 1, "batch_size": 8, "learning_rate": 1.0, "checkpoint_every": 0, "warmup_ratio": 0.0}
    spec = TrainSpec(**{**kw, "max_grad_norm": 0.0, "lr_scheduler": "constant", **spec_kw})
    sgd = torch.optim.SGD(params, lr=spec.learning_rate)
    loop = TrainLoop(peft_model, encoded, spec, None, _pad_id(tok), optimizer=sgd, layout=layout)
    forwards = Forwards(peft_model)
    rec = Recorder()
    loop.run(rec)
    weights = {n: p.detach().clone() for n, p in peft_model.named_parameters() if p.requires_grad}
    return weights, loop, rec, forwards


def test_micro_batches_are_cut_by_tokens_and_long_rows_are_alone():
    assert micro_batches([50, 40, 30, 10], 100) == [[0, 1], [2, 3]]  # 2 x 50 fits, 3 x 50 does not
    assert micro_batches([50, 40, 30, 10], 100, padded=False) == [[0, 1], [2, 3]]
    assert micro_batches([50, 40, 10], 100, padded=False) == [[0, 1, 2]]
    assert micro_batches([300, 20, 20], 100) == [[0], [1, 2]]  # a row over the budget is its own micro-batch
    assert micro_batches([5, 5, 5], 1) == [[0], [1], [2]]
    assert micro_batches([5, 5, 5], 10**6) == [[0, 1, 2]]
    assert micro_batches([], 10) == []


@pytest.mark.parametrize("layout", ["padded", "packed", "reference"])
def test_accumulated_micro_batches_give_the_whole_batch_gradient(tiny, layout, monkeypatch):
    """Two SGD steps (lr 1: the weight change is the gradient) with the whole batch in one forward, with every
    row alone, and with a few rows per micro-batch: the same weights and losses up to float rounding."""
    data = chats(16, seed=5)
    whole, loop1, rec1, fw1 = _loop(tiny, data, micro_batch_tokens=10**6, layout=layout)
    alone, loop2, rec2, fw2 = _loop(tiny, data, micro_batch_tokens=1, layout=layout)
    some, loop3, _, _ = _loop(tiny, data, micro_batch_tokens=60, layout=layout)
    assert loop1.memory["micro_batches"] == 2 and loop2.memory["micro_batches"] == 16
    assert 2 < loop3.memory["micro_batches"] < 16
    assert len(fw1.calls) == 2 and len(fw2.calls) == 16 and all(rows == 1 for rows, *_ in fw2.calls)
    assert loop1.state["step"] == loop2.state["step"] == loop3.state["step"] == 2
    init, _, _, _ = _loop(tiny, data, learning_rate=1e-12, layout=layout)
    assert max((whole[k] - init[k]).abs().max() for k in whole) > 1e-3  # the step moved the weights
    for other in (alone, some):
        assert all(torch.allclose(whole[k], other[k], rtol=1e-4, atol=1e-6) for k in whole)
    losses1, losses2 = [m["loss"] for m in rec1.metrics], [m["loss"] for m in rec2.metrics]
    assert losses1 == pytest.approx(losses2, rel=1e-5)


def test_activation_checkpointing_under_peft_gives_the_same_gradient(tiny, monkeypatch):
    data = chats(8, seed=6)
    plain, loop1, _, _ = _loop(tiny, data)
    monkeypatch.setattr(plan, "CHECKPOINT_ABOVE_BYTES", 0)  # every micro-batch checkpointed
    ckpt, loop2, _, _ = _loop(tiny, data)
    assert loop1.memory["checkpointed_micro_batches"] == 0 and loop2.memory["checkpointed_micro_batches"] == 1
    assert all(torch.allclose(plain[k], ckpt[k], rtol=1e-5, atol=1e-7) for k in plain)
    assert not any(m.gradient_checkpointing for m in loop2.checkpointing.layers)  # switched off after use


def test_long_rows_train_within_the_token_budget(tiny, tmp_path):
    """Rows far longer than the budget: every forward holds one row (no padding, so no attention mask: SDPA runs
    is_causal), short rows share a micro-batch within the budget, and the step count is the batch size's."""
    long_rows = chats(4, seed=1, filler=(150, 200), answer=(20, 40))
    short_rows = chats(12, seed=2, filler=(0, 4), answer=(1, 2))
    model, tok = load_model(tiny["base"], device="cpu")
    budget = 64
    spec = TrainSpec(n_epochs=1, batch_size=8, learning_rate=1e-3, checkpoint_every=0, micro_batch_tokens=budget)
    seen: list[tuple[int, int, bool]] = []

    def watch(peft_model):
        def hook(module, args, kwargs):
            ids = kwargs["input_ids"]
            seen.append((ids.shape[0], ids.shape[1], kwargs.get("attention_mask") is not None))

        peft_model.get_base_model().model.register_forward_pre_hook(hook, with_kwargs=True)

    res = train_lora(model, tok, long_rows + short_rows, spec, LORA, str(tmp_path), configure=watch, layout="padded")
    assert res.steps == 2 and math.isfinite(res.final_loss)
    longest = max(width for _, width, _ in seen)
    assert longest > 3 * budget  # the long rows did reach the model, whole
    for rows, width, masked in seen:
        assert rows * width <= budget or rows == 1
        if rows == 1:
            assert not masked
    assert res.metrics["max_micro_batch_tokens"] == longest and res.metrics["micro_batches"] == len(seen)
    assert any(rows > 1 for rows, _, _ in seen)  # short rows still share a micro-batch
    assert res.metrics["peak_memory_bytes"] > 0


def test_emulated_cuda_path_reports_no_nan(tiny, tmp_path):
    """The CUDA branches on the CPU: loss read every 10 steps (None before the first read, never NaN), packed
    rows with per-example positions and no mask, bf16 autocast, fused AdamW."""
    model, tok = load_model(tiny["base"], device="cpu")
    spec = TrainSpec(n_epochs=1, batch_size=2, learning_rate=1e-3, checkpoint_every=0, emulate_cuda_path=True)
    rec, seen = Recorder(), []

    def watch(peft_model):
        def hook(module, args, kwargs):
            seen.append((kwargs.get("attention_mask") is None, kwargs.get("position_ids") is not None))

        def dtype(module, args, out):
            seen.append(out.dtype)

        base = peft_model.get_base_model()
        base.model.register_forward_pre_hook(hook, with_kwargs=True)
        base.model.layers[0].self_attn.q_proj.register_forward_hook(dtype)

    res = train_lora(model, tok, chats(24, seed=3), spec, LORA, str(tmp_path), progress=rec, configure=watch)
    assert len(rec.metrics) == res.steps == 12
    for m in rec.metrics:
        assert all(v is None or math.isfinite(v) for v in m.values()), m
        json.dumps(m, allow_nan=False)
    assert [m["loss"] is None for m in rec.metrics[:10]] == [True] * 9 + [False]
    assert rec.metrics[-1]["loss"] == res.final_loss and math.isfinite(res.final_loss)
    assert (True, True) in seen and torch.bfloat16 in seen  # packed, unmasked, autocast
    assert all(math.isfinite(v) for v in res.metrics.values())


def test_micro_batch_budget_is_not_part_of_the_checkpoint_fingerprint(tiny, tmp_path):
    """The OOM retry resumes with a smaller budget: its checkpoints must still be picked up."""
    from tuning.train import _fingerprint

    model, tok = load_model(tiny["base"], device="cpu")
    encoded, _ = _encode_all(tok, chats(4), 512)
    a, b = TrainSpec(micro_batch_tokens=4096), TrainSpec(micro_batch_tokens=512, emulate_cuda_path=True)
    assert _fingerprint(encoded, a) == _fingerprint(encoded, b) != _fingerprint(encoded, TrainSpec(seed=1))
    with pytest.raises(ValueError, match="micro_batch_tokens"):
        TrainSpec(micro_batch_tokens=0)


SMOLLM2 = {
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "vocab_size": 49152,
    "tie_word_embeddings": True,
}


def test_memory_estimate_is_linear_in_the_row_and_bounded_by_the_budget():
    shape = ModelShape.from_config(SMOLLM2)
    assert 134e6 < shape.n_params < 135e6  # SmolLM2-135M
    lora = lora_param_count(shape, 8, ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"))
    assert lora == 2_442_240  # peft's count for r=8 on all seven projections
    est = [estimate_peak_memory_bytes(shape, lora, 4096, n) for n in (256, 1024, 4096, 8192, 16384)]
    assert est[0] == est[1] == est[2]  # rows within the budget: the budget decides
    assert (est[4] - est[3]) / 8192 == pytest.approx((est[3] - est[2]) / 4096, rel=0.01)  # then linear in the row
    assert est[3] < 4 * 1024**3
    assert estimate_peak_memory_bytes(shape, lora, 1024, 0) < est[0]
