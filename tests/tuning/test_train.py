"""The LoRA SFT loop: learns, is deterministic, resumes exactly, stops promptly, survives bad state."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tuning.data import collate, encode_example
from tuning.evaluate import token_accuracy
from tuning.modeling import load_model
from tuning.plan import resolve_auto_hyperparameters, total_steps
from tuning.specs import LoraSpec, TrainSpec
from tuning.train import STATE, _epoch_batches, latest_checkpoint, lr_factor, train_lora

LORA = LoraSpec(r=4, alpha=8)
FILLER = ["the", "movie", "film", "sun", "rain", "cats", "dogs"]


def examples(n: int, seed: int = 0) -> list[list[dict]]:
    """Sentiment → made-up label words, with a variable amount of filler so lengths differ."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        good = rng.random() < 0.5
        filler = " ".join(rng.choice(FILLER) for _ in range(rng.randint(0, 12)))
        out.append(
            [
                {"role": "user", "content": f"classify review {'good' if good else 'bad'} movie {filler}"},
                {"role": "assistant", "content": "zorp" if good else "blick"},
            ]
        )
    return out


DATA = examples(32)


def _train(tiny, out, spec, data=DATA, lora=LORA, **kw):
    model, tok = load_model(tiny["base"], device="cpu")
    return train_lora(model, tok, data, spec, lora, str(out), init_adapter=tiny["alignment"], **kw)


class Recorder:
    """A Progress that records calls and asks to stop once ``stop_at`` steps are done."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.stop_at, self.steps, self.metrics, self.checkpoints = stop_at, [], [], []

    def on_step(self, step, total, metrics):
        self.steps.append((step, total))
        self.metrics.append(metrics)

    def on_checkpoint(self, step, path, metrics):
        self.checkpoints.append((step, path, (Path(path) / STATE).exists()))

    def should_stop(self):
        return self.stop_at is not None and bool(self.steps) and self.steps[-1][0] >= self.stop_at


def test_training_learns_and_is_bitwise_deterministic(tiny, tmp_path):
    spec = TrainSpec(n_epochs=4, batch_size=4, learning_rate=1e-2, checkpoint_every=0, seed=3)
    rec = Recorder()
    a = _train(tiny, tmp_path / "a", spec, progress=rec, valid_examples=DATA[:8])
    b = _train(tiny, tmp_path / "b", spec)
    assert (Path(a.adapter_dir) / "adapter_model.safetensors").read_bytes() == (
        Path(b.adapter_dir) / "adapter_model.safetensors"
    ).read_bytes()
    assert (Path(a.adapter_dir) / "adapter_config.json").exists() and not a.cancelled
    assert a.steps == total_steps(32, spec.batch_size, spec.n_epochs) == 32 and [s for s, _ in rec.steps] == list(
        range(1, 33)
    )
    assert set(rec.metrics[0]) >= {"loss", "lr", "tokens_per_s", "epoch", "trained_tokens"}
    assert rec.metrics[-1]["trained_tokens"] == a.trained_tokens > 0 and rec.metrics[-1]["epoch"] == 3
    model, tok = load_model(tiny["base"], device="cpu", adapter=tiny["alignment"])
    before = token_accuracy(model, tok, DATA[:8])
    assert before["accuracy"] < 50 and a.metrics["valid_mean_token_accuracy"] >= 87.5
    assert a.metrics["valid_loss"] < 0.3 * before["loss"]
    c = _train(
        tiny, tmp_path / "c", TrainSpec(n_epochs=4, batch_size=4, learning_rate=1e-2, checkpoint_every=0, seed=4)
    )
    wa, wc = (
        load_file(f"{a.adapter_dir}/adapter_model.safetensors"),
        load_file(f"{c.adapter_dir}/adapter_model.safetensors"),
    )
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)  # the seed matters


def test_resume_from_checkpoint_equals_uninterrupted_run(tiny, tmp_path):
    spec = TrainSpec(n_epochs=3, batch_size=4, learning_rate=5e-3, checkpoint_every=5, seed=1)
    lora = LoraSpec(r=4, alpha=8, dropout=0.2)  # dropout: the RNG state must be restored too
    full = _train(tiny, tmp_path / "full", spec, lora=lora)
    rec = Recorder(stop_at=12)
    stopped = _train(tiny, tmp_path / "resumed", spec, lora=lora, progress=rec)
    assert stopped.cancelled and stopped.steps == 12 and not (tmp_path / "resumed" / "adapter").exists()
    assert [(s, ok) for s, _, ok in rec.checkpoints] == [(5, True), (10, True)]
    assert latest_checkpoint(tmp_path / "resumed").name == "step-10"
    rec2 = Recorder()
    resumed = _train(tiny, tmp_path / "resumed", spec, lora=lora, progress=rec2)
    assert resumed.resumed_from_step == 10 and rec2.steps[0][0] == 11 and resumed.steps == full.steps == 24
    assert resumed.trained_tokens == full.trained_tokens
    wf, wr = (
        load_file(f"{full.adapter_dir}/adapter_model.safetensors"),
        load_file(f"{resumed.adapter_dir}/adapter_model.safetensors"),
    )
    assert wf.keys() == wr.keys() and all(torch.allclose(wf[k], wr[k], rtol=0, atol=1e-6) for k in wf)
    fresh = _train(tiny, tmp_path / "resumed", spec, lora=lora, resume=False)
    assert fresh.resumed_from_step == 0


def test_cancel_returns_promptly_without_final_adapter(tiny, tmp_path):
    spec = TrainSpec(n_epochs=50, batch_size=1, learning_rate=1e-3, checkpoint_every=0)
    started = time.monotonic()
    res = _train(tiny, tmp_path / "c", spec, progress=Recorder(stop_at=3))
    assert res.cancelled and res.steps == 3 and res.adapter_dir == "" and res.trained_tokens > 0
    assert not (tmp_path / "c" / "adapter").exists() and time.monotonic() - started < 30


def test_checkpoints_of_another_run_or_half_written_are_ignored(tiny, tmp_path):
    spec = TrainSpec(n_epochs=2, batch_size=4, learning_rate=5e-3, checkpoint_every=4, seed=1)
    _train(tiny, tmp_path / "r", spec, progress=Recorder(stop_at=5))
    assert latest_checkpoint(tmp_path / "r").name == "step-4"
    (tmp_path / "r" / "checkpoints" / "step-7").mkdir()  # crashed before trainer_state.json
    (tmp_path / "r" / "checkpoints" / ".tmp-x").mkdir()
    assert latest_checkpoint(tmp_path / "r").name == "step-4"
    res = _train(tiny, tmp_path / "r", spec, data=examples(32, seed=9))  # different data: fresh start
    assert res.resumed_from_step == 0 and res.steps == 16
    assert not (tmp_path / "r" / "checkpoints" / ".tmp-x").exists()
    assert latest_checkpoint(tmp_path / "r").name == "step-12"


def test_examples_truncated_before_any_answer_are_skipped(tiny, tmp_path):
    long = [
        [{"role": "user", "content": "classify review " + "good movie " * 30}, {"role": "assistant", "content": "zorp"}]
    ]
    spec = TrainSpec(n_epochs=1, batch_size=2, learning_rate=1e-3, checkpoint_every=0, max_seq_len=24)
    short = [[{"role": "user", "content": "good movie"}, {"role": "assistant", "content": "zorp"}]] * 4
    res = _train(tiny, tmp_path / "t", spec, data=short + long)
    assert res.metrics["skipped_examples"] == 1 and res.steps == 2 and res.final_loss == res.final_loss
    with pytest.raises(ValueError, match="no training example"):
        _train(tiny, tmp_path / "u", spec, data=long)


def test_configure_can_freeze_parameters(tiny, tmp_path):
    def freeze_a(peft_model):
        for name, p in peft_model.named_parameters():
            if "lora_A" in name:
                p.requires_grad_(False)

    spec = TrainSpec(n_epochs=1, batch_size=4, learning_rate=5e-3, checkpoint_every=0)
    res = _train(tiny, tmp_path / "f", spec, configure=freeze_a)
    out, init = (
        load_file(f"{res.adapter_dir}/adapter_model.safetensors"),
        load_file(f"{tiny['alignment']}/adapter_model.safetensors"),
    )
    assert all(torch.equal(out[k], init[k]) == ("lora_A" in k) for k in init)


def test_epoch_batches_are_a_seeded_length_grouped_permutation(tiny_tok):
    enc = [encode_example(tiny_tok, m) for m in examples(200, seed=5)]
    lengths = [len(e["input_ids"]) for e in enc]
    grouped = _epoch_batches(lengths, 8, seed=0, epoch=0)
    assert grouped == _epoch_batches(lengths, 8, seed=0, epoch=0) != _epoch_batches(lengths, 8, seed=0, epoch=1)
    assert sorted(i for b in grouped for i in b) == list(range(200)) and all(len(b) <= 8 for b in grouped)
    order = torch.randperm(200, generator=torch.Generator().manual_seed(0)).tolist()
    plain = [order[i : i + 8] for i in range(0, 200, 8)]

    def padding(batches):
        return sum(collate([enc[i] for i in b], 0)["attention_mask"].eq(0).sum().item() for b in batches)

    assert padding(grouped) < 0.5 * padding(plain)


def test_auto_hyperparameters():
    assert resolve_auto_hyperparameters(10, 1_000) == {"n_epochs": 10, "batch_size": 1, "learning_rate_multiplier": 1.0}
    assert resolve_auto_hyperparameters(50, 5_000)["n_epochs"] == 3
    assert resolve_auto_hyperparameters(400, 40_000) == {
        "n_epochs": 3,
        "batch_size": 8,
        "learning_rate_multiplier": 1.0,
    }
    assert resolve_auto_hyperparameters(10_000, 1_000_000)["batch_size"] == 20
    assert resolve_auto_hyperparameters(100_000, 30_000_000)["n_epochs"] == 2
    assert resolve_auto_hyperparameters(100_000, 90_000_000) == {
        "n_epochs": 1,
        "batch_size": 32,
        "learning_rate_multiplier": 1.0,
    }


def test_lr_factor_warms_up_then_decays_by_cosine_to_its_floor():
    assert [lr_factor(s, 100, 4) for s in range(4)] == [0.2, 0.4, 0.6, 0.8]
    assert lr_factor(4, 100, 4) == 1.0 and lr_factor(100, 100, 4) == 0.0
    assert lr_factor(52, 100, 4) == pytest.approx(0.5)
    assert lr_factor(100, 100, 4, floor=0.1) == pytest.approx(0.1) and lr_factor(4, 100, 4, floor=0.1) == 1.0
    assert lr_factor(90, 100, 4, schedule="constant") == 1.0


@pytest.mark.parametrize("layout", ["padded", "packed"])
def test_fast_layouts_train_like_the_reference_loss(tiny, tmp_path, layout):
    """The labelled-positions loss (padded or packed batches) trains the same adapter as HF's full-logits loss."""
    spec = TrainSpec(n_epochs=2, batch_size=4, learning_rate=5e-3, checkpoint_every=0, seed=2)
    ref = _train(tiny, tmp_path / "ref", spec, layout="reference")
    new = _train(tiny, tmp_path / layout, spec, layout=layout)
    assert new.steps == ref.steps == 16 and new.trained_tokens == ref.trained_tokens
    assert new.final_loss == pytest.approx(ref.final_loss, rel=1e-4)
    wr, wn = (load_file(f"{r.adapter_dir}/adapter_model.safetensors") for r in (ref, new))
    assert all(torch.allclose(wr[k], wn[k], rtol=1e-3, atol=1e-5) for k in wr)
    init = load_file(f"{tiny['alignment']}/adapter_model.safetensors")
    assert any(not torch.allclose(wr[k], init[k], atol=1e-3) for k in wr)  # it did train


def test_unknown_layout_is_rejected(tiny, tmp_path):
    with pytest.raises(ValueError, match="layout"):
        _train(tiny, tmp_path / "x", TrainSpec(n_epochs=1, batch_size=4, checkpoint_every=0), layout="ragged")


def test_encoded_examples_are_compact_and_batch_like_lists(tiny_tok):
    """The training loop holds a file's tokens as int32 arrays (issue 19 item 5): a few bytes per token, not ~72
    for Python int lists; batches, packing and the checkpoint fingerprint are identical either way."""
    import tracemalloc
    from array import array

    from tuning.data import pack
    from tuning.train import _encode_all, _fingerprint

    data = examples(200, seed=1)
    lists = [encode_example(tiny_tok, m) for m in data]
    tracemalloc.start()
    kept, skipped = _encode_all(tiny_tok, data, 512)
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    tokens = sum(len(e["input_ids"]) for e in lists)
    assert skipped == 0 and all(isinstance(e["input_ids"], array) and e["labels"].itemsize == 4 for e in kept)
    assert held / tokens < 24, f"{held / tokens:.1f} bytes per token held"  # lists of ints: ~72
    for got, want in ((collate(kept[:5], 0), collate(lists[:5], 0)), (pack(kept[:5]), pack(lists[:5]))):
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in got)
    spec = TrainSpec()
    assert _fingerprint(kept, spec) == _fingerprint(lists, spec)
