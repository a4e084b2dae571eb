"""Row normalization (every error code), assistant-only label masking on several templates, collation."""

from __future__ import annotations

import json

import pytest

from tests.tuning.conftest import CHATML
from tuning.data import collate, encode_example
from tuning.rows import (
    ERROR_CODES,
    FALLBACK_CHAT_TEMPLATE,
    RowError,
    count_tokens,
    normalize_row,
    parse_line,
    read_jsonl,
)

A = {"role": "assistant", "content": "x"}
BAD_ROWS = [
    ("[1, 2", "invalid_json"),
    ("[]", "invalid_format"),
    ('"text"', "invalid_format"),
    (json.dumps({"messages": ["hi", A]}), "invalid_format"),
    (json.dumps({"messages": [{"role": "user", "content": 3}, A]}), "invalid_format"),
    (json.dumps({"messages": [{"role": "user", "content": "q", "weight": 1}, A]}), "invalid_format"),
    (json.dumps({"messages": [{"role": "user", "content": "q"}, {**A, "weight": 2}]}), "invalid_format"),
    (json.dumps({"messages": [{"role": "user", "content": "q"}, {**A, "weight": True}]}), "invalid_format"),
    (json.dumps({"messages": [{"role": "user", "content": "q", "name": 5}, A]}), "invalid_format"),
    (json.dumps({"prompt": "p", "completion": None}), "invalid_format"),
    (json.dumps({"foo": 1}), "missing_messages"),
    (json.dumps({"messages": []}), "missing_messages"),
    (json.dumps({"messages": "hello"}), "missing_messages"),
    (json.dumps({"messages": [{"role": "bot", "content": "x"}, A]}), "invalid_role"),
    (json.dumps({"messages": [{"role": "tool", "content": "x"}, A]}), "invalid_role"),
    (json.dumps({"messages": [{"content": "x"}, A]}), "invalid_role"),
    (json.dumps({"messages": [{"role": "user", "content": " \n"}, A]}), "empty_content"),
    (json.dumps({"prompt": "", "completion": "c"}), "empty_content"),
    (json.dumps({"messages": [{"role": "user", "content": "q"}]}), "no_assistant_turn"),
    (json.dumps({"messages": [{"role": "user", "content": "q"}, {**A, "weight": 0}]}), "no_assistant_turn"),
]


@pytest.mark.parametrize("line, code", BAD_ROWS)
def test_bad_rows_raise_their_error_code(line, code):
    with pytest.raises(RowError) as err:
        parse_line(line)
    assert err.value.code == code and str(err.value)


def test_every_error_code_is_exercised():
    # too_long depends on the model's context: the service raises it from count_tokens (tests/service)
    assert {code for _, code in BAD_ROWS} | {"too_long"} == set(ERROR_CODES)


def test_read_jsonl_returns_the_raw_objects_of_non_blank_lines():
    assert read_jsonl(b'{"a": 1}\n\n  \n[2]\n') == [{"a": 1}, [2]] == read_jsonl('{"a": 1}\r\n[2]')
    with pytest.raises(json.JSONDecodeError):
        read_jsonl("{")


def test_a_base_model_without_chat_template_counts_what_training_encodes(tmp_path):
    """Upload validation loads a plain AutoTokenizer; training loads it with the fallback template: the same
    rows are accepted and the same number of tokens is counted."""
    from transformers import AutoTokenizer

    from tests.tuning.conftest import build_tokenizer
    from tuning.modeling import load_tokenizer

    build_tokenizer(tmp_path, chat_template=None, pad=False)
    plain, training = AutoTokenizer.from_pretrained(tmp_path), load_tokenizer(str(tmp_path))
    assert not plain.chat_template and training.chat_template == FALLBACK_CHAT_TEMPLATE
    n = count_tokens(plain, CONVERSATION)
    assert n == count_tokens(training, CONVERSATION) == len(encode_example(training, CONVERSATION)["input_ids"])
    assert encode_example(plain, CONVERSATION) == encode_example(training, CONVERSATION)


def test_valid_rows_are_normalized():
    assert parse_line(b'{"prompt": "p", "completion": "c"}') == [
        {"role": "user", "content": "p"},
        {"role": "assistant", "content": "c"},
    ]
    row = {
        "messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "u", "name": "ann"},
            {"role": "assistant", "content": "a", "weight": 0, "extra": 1},
            {"role": "user", "content": "u2"},
            {"role": "assistant", "content": "b", "weight": 1},
        ]
    }
    assert normalize_row(row) == [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "u", "name": "ann"},
        {"role": "assistant", "content": "a", "weight": 0},
        {"role": "user", "content": "u2"},
        {"role": "assistant", "content": "b", "weight": 1},
    ]


CONVERSATION = [
    {"role": "system", "content": "you are a helpful model"},
    {"role": "user", "content": "classify review good movie"},
    {"role": "assistant", "content": "zorp"},
    {"role": "user", "content": "and bad film"},
    {"role": "assistant", "content": "blick", "weight": 0},
    {"role": "user", "content": "good film"},
    {"role": "assistant", "content": "zorp yes"},
]
COMPACT = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}: {{ m['content'] }}<|im_end|>{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant: {% endif %}"
)


def _spans(tok, enc) -> list[str]:
    """Decoded runs of consecutive labelled tokens; labels must equal the input ids where set."""
    spans, run = [], []
    for t, lab in zip(enc["input_ids"], enc["labels"], strict=True):
        if lab != -100:
            assert lab == t
            run.append(t)
        elif run:
            spans.append(tok.decode(run)), run.clear()
    return spans + ([tok.decode(run)] if run else [])


@pytest.mark.parametrize(
    "template, turn_end, lead",
    [
        (CHATML, "<|im_end|>\n", ""),
        (FALLBACK_CHAT_TEMPLATE, "<|im_end|>\n", ""),
        # the generation prompt ends in a space that BPE merges into the first answer token: the label span
        # starts at that merged token (" zorp"), nothing of the user turn is labelled
        (COMPACT, "<|im_end|>", " "),
    ],
)
def test_only_weighted_assistant_turns_are_labelled(tiny_tok, template, turn_end, lead):
    tok = tiny_tok.__class__.from_pretrained(tiny_tok.name_or_path)
    tok.chat_template = template
    enc = encode_example(tok, CONVERSATION)
    assert len(enc["input_ids"]) == len(enc["labels"]) == count_tokens(tok, CONVERSATION)
    assert _spans(tok, enc) == [f"{lead}zorp{turn_end}", f"{lead}zorp yes{turn_end}"]
    everything = encode_example(tok, CONVERSATION, all_tokens=True)
    assert everything["labels"] == everything["input_ids"] == enc["input_ids"]


def test_truncation_keeps_the_start(tiny_tok):
    enc = encode_example(tiny_tok, CONVERSATION)
    short = encode_example(tiny_tok, CONVERSATION, max_len=9)
    assert short == {"input_ids": enc["input_ids"][:9], "labels": enc["labels"][:9]}


def test_a_template_that_rejects_the_conversation_is_a_row_error(tiny_tok):
    tok = tiny_tok.__class__.from_pretrained(tiny_tok.name_or_path)
    tok.chat_template = (
        "{% if messages[0]['role'] == 'system' %}{{ raise_exception('no system role') }}{% endif %}" + CHATML
    )
    with pytest.raises(RowError) as err:
        count_tokens(tok, CONVERSATION)
    assert err.value.code == "invalid_format" and "no system role" in str(err.value)
    assert count_tokens(tok, CONVERSATION[1:]) > 0


def test_collate_pads_right_and_masks_labels():
    b = collate([{"input_ids": [1, 2, 3], "labels": [-100, 2, 3]}, {"input_ids": [4], "labels": [4]}], pad_id=0)
    assert b["input_ids"].tolist() == [[1, 2, 3], [4, 0, 0]]
    assert b["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert b["labels"].tolist() == [[-100, 2, 3], [4, -100, -100]]
