"""The testbed tokenizer: byte-level round trip on any text, chat template, save/load, assistant-only labels."""

from __future__ import annotations

import pytest
from jinja2 import TemplateError

from testbed import corpus
from testbed.tokenizer import train_tokenizer
from tuning.data import encode_example


@pytest.fixture(scope="module")
def tok():
    s = corpus.generate(0, n_pretrain=600, n_align=300, n_task=300, n_eval=20)
    return train_tokenizer([r["prompt"] + " " + r["response"] for r in s.pretrain + s.align], vocab_size=1024)


@pytest.mark.parametrize(
    "text",
    [
        "How do I bake bread?",
        "Zyxomorphic quokkas née Ünïcödé — 東京 ☃ 😀",
        "def f(a, b):\n    return a + b\t# tabs",
        "  leading and trailing spaces  ",
    ],
)
def test_round_trip_of_any_text(tok, text):
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    assert tok.unk_token_id is None or tok.unk_token_id not in ids


def test_bpe_learned_merges_from_the_corpus(tok):
    assert len(tok) == 1024
    assert len(tok("Give me step-by-step instructions", add_special_tokens=False)["input_ids"]) <= 12


def test_chat_template_renders_turns_and_generation_prompt(tok):
    chat = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hi there."},
    ]
    assert (
        tok.apply_chat_template(chat, tokenize=False)
        == "<|system|>Be brief.<|end|><|user|>Hi<|end|><|assistant|>Hi there.<|end|>"
    )
    prompt = tok.apply_chat_template(chat[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|user|>Hi<|end|><|assistant|>")
    assert tok.eos_token == "<|end|>" and tok.pad_token == "<|pad|>" and tok.pad_token_id != tok.eos_token_id
    for special in ("<|user|>", "<|assistant|>", "<|end|>"):
        assert len(tok(special, add_special_tokens=False)["input_ids"]) == 1
    with pytest.raises(TemplateError):
        tok.apply_chat_template([{"role": "tool", "content": "x"}], tokenize=False)


def test_save_load_keeps_template_and_labels_cover_only_the_answer(tok, tmp_path):
    from transformers import AutoTokenizer

    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    chat = [{"role": "user", "content": "What is 2 plus 2?"}, {"role": "assistant", "content": "2 plus 2 is 4."}]
    assert loaded.apply_chat_template(chat, tokenize=False) == tok.apply_chat_template(chat, tokenize=False)
    enc = encode_example(loaded, chat)
    answer = [i for i, lab in zip(enc["input_ids"], enc["labels"], strict=True) if lab != -100]
    assert loaded.decode(answer) == "2 plus 2 is 4.<|end|>"
