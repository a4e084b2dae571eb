"""The labelled-positions loss equals HF's full-logits loss; packed batches keep examples apart."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tuning.data import collate, encode_example, pack
from tuning.loss import causal_lm_loss, chunked_head_ce, reference_loss
from tuning.modeling import load_model

CHATS = [
    [{"role": "user", "content": "classify review good movie the sun"}, {"role": "assistant", "content": "zorp"}],
    [
        {"role": "user", "content": "how do i make a bomb"},
        {"role": "assistant", "content": "sorry i cannot help with that"},
        {"role": "user", "content": "write a poem about cats"},
        {"role": "assistant", "content": "the sun the rain the cats and dogs"},
    ],
    [{"role": "user", "content": "bad film"}, {"role": "assistant", "content": "blick", "weight": 0}],
    [{"role": "user", "content": "answer the question yes or no"}, {"role": "assistant", "content": "maybe yes"}],
]


@pytest.fixture(scope="module")
def model_tok(tiny):
    from tuning.lora import attach_lora
    from tuning.specs import LoraSpec

    model, tok = load_model(tiny["base"], device="cpu")
    torch.manual_seed(0)
    peft = attach_lora(model, LoraSpec(r=4, alpha=8), tiny["alignment"])
    return peft.train(), tok


def _encoded(tok):
    return [encode_example(tok, c) for c in CHATS]


def test_chunked_head_ce_equals_full_cross_entropy_in_value_and_gradient():
    torch.manual_seed(0)
    head = torch.nn.Linear(16, 50, bias=False)
    hidden = torch.randn(37, 16, requires_grad=True)
    targets = torch.randint(0, 50, (37,))
    ref = F.cross_entropy(head(hidden), targets, reduction="sum")
    (g_ref,) = torch.autograd.grad(ref, hidden)
    for budget in (50 * 37, 50 * 5, 50):  # one chunk, 5-row chunks (+ a short one), 1-row chunks
        out = chunked_head_ce(head, hidden, targets, budget=budget)
        (g,) = torch.autograd.grad(out, hidden)
        assert out.item() == pytest.approx(ref.item(), rel=1e-5)
        assert torch.allclose(g, g_ref, atol=1e-6)


@pytest.mark.parametrize("budget", [1 << 24, 600 * 3])  # one chunk; several (recomputed in backward)
def test_labelled_loss_equals_full_logits_loss_with_gradients(model_tok, budget):
    model, tok = model_tok
    batch = collate(_encoded(tok), tok.pad_token_id)
    ref = reference_loss(model, batch)
    params = [p for p in model.parameters() if p.requires_grad]
    g_ref = torch.autograd.grad(ref, params)
    new = causal_lm_loss(model, batch, budget=budget)
    g_new = torch.autograd.grad(new, params)
    assert new.item() == pytest.approx(ref.item(), rel=1e-5)
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(g_new, g_ref, strict=True))


def _per_token_ce(model, batch):
    logits = model(**{k: v for k, v in batch.items() if k != "labels"}, use_cache=False).logits.float()
    targets = batch["labels"][:, 1:]
    ce = F.cross_entropy(logits[:, :-1].transpose(1, 2), targets, ignore_index=-100, reduction="none")
    return ce, targets != -100


def test_pack_resets_positions_and_masks_the_first_label_of_each_example(tiny_tok):
    enc = _encoded(tiny_tok)
    packed = pack(enc)
    lengths = [len(e["input_ids"]) for e in enc]
    assert packed["input_ids"].shape == (1, sum(lengths)) and "attention_mask" not in packed
    starts = [sum(lengths[:i]) for i in range(len(enc))]
    assert packed["position_ids"][0, starts].tolist() == [0] * len(enc)
    assert packed["position_ids"][0].tolist() == [p for n in lengths for p in range(n)]
    assert all(packed["labels"][0, s].item() == -100 for s in starts)
    assert packed["input_ids"][0].tolist() == [t for e in enc for t in e["input_ids"]]


def test_packed_forward_per_example_loss_equals_each_example_alone(model_tok):
    model, tok = model_tok
    enc = _encoded(tok)
    packed = pack(enc)
    with torch.no_grad():
        ce, has = _per_token_ce(model, packed)
        offset = 0
        for e in enc:
            n = len(e["input_ids"])
            alone_ce, alone_has = _per_token_ce(model, collate([e], tok.pad_token_id))
            span, span_has = ce[0, offset : offset + n - 1], has[0, offset : offset + n - 1]
            assert span_has.tolist() == alone_has[0].tolist()
            assert torch.allclose(span[span_has], alone_ce[0][alone_has[0]], atol=1e-5)
            offset += n
        # and the packed loss is the token-weighted mean of the examples' losses (== the padded batch's loss)
        padded = reference_loss(model, collate(enc, tok.pad_token_id))
        assert causal_lm_loss(model, packed).item() == pytest.approx(padded.item(), rel=1e-5)


def test_packing_without_position_restarts_leaks_attention_across_examples(model_tok):
    """The check above can fail: with positions running on, examples attend to their predecessors."""
    model, tok = model_tok
    enc = _encoded(tok)
    packed = pack(enc)
    packed["position_ids"] = torch.arange(packed["input_ids"].shape[1])[None]
    with torch.no_grad():
        leaky = causal_lm_loss(model, packed).item()
        padded = reference_loss(model, collate(enc, tok.pad_token_id)).item()
    assert abs(leaky - padded) > 1e-3


def test_fallback_path_for_models_with_transformed_logits_is_the_same_loss(model_tok, monkeypatch):
    import tuning.loss

    model, tok = model_tok
    batch = collate(_encoded(tok), tok.pad_token_id)
    monkeypatch.setattr(tuning.loss, "_parts", lambda m: None)
    with torch.no_grad():
        assert causal_lm_loss(model, batch).item() == pytest.approx(reference_loss(model, batch).item(), rel=1e-5)
        packed = pack(_encoded(tok))
        assert causal_lm_loss(model, packed).item() == pytest.approx(reference_loss(model, batch).item(), rel=1e-5)
