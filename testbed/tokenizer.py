"""The testbed's own byte-level BPE tokenizer (any text tokenizes) wrapped as a PreTrainedTokenizerFast
with a chat template: ``<|system|>..<|end|><|user|>..<|end|><|assistant|>..<|end|>``; the generation
prompt is ``<|assistant|>`` and ``<|end|>`` is the EOS token, so generation stops at the end of a turn.
"""
from __future__ import annotations

from collections.abc import Iterable

PAD, EOS = "<|pad|>", "<|end|>"
SPECIALS = [PAD, EOS, "<|system|>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] not in ['system', 'user', 'assistant'] %}{{ raise_exception('unknown role: ' + m['role']) }}{% endif %}"
    "<|{{ m['role'] }}|>{{ m['content'] }}<|end|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 4096):  # noqa: ANN201
    """Train byte-level BPE on ``texts`` (deterministic for the same input order)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS)
    fast.chat_template = CHAT_TEMPLATE
    return fast
