"""Byte-level BPE tokenizers trained from text (any text tokenizes), wrapped as PreTrainedTokenizerFast.

:func:`build_bpe` is the one builder (the testbed's and the tests' tiny models use it). The testbed's own
tokenizer (:func:`train_tokenizer`) has the chat template ``<|system|>..<|end|><|user|>..<|end|>
<|assistant|>..<|end|>``; the generation prompt is ``<|assistant|>`` and ``<|end|>`` is the EOS token, so
generation stops at the end of a turn.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

PAD, EOS = "<|pad|>", "<|end|>"
SPECIALS = [PAD, EOS, "<|system|>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('unknown role: ' + m['role']) }}{% endif %}"
    "<|{{ m['role'] }}|>{{ m['content'] }}<|end|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def build_bpe(
    texts: Iterable[str],
    vocab_size: int,
    specials: Sequence[str],
    eos: str,
    pad: str | None = None,
    chat_template: str | None = None,
) -> Any:
    """Train byte-level BPE on ``texts`` (deterministic for the same input order) with ``specials`` as
    single tokens; ``eos`` (and ``pad`` if given) name special tokens; ``chat_template`` is set if given."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(specials),
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, **({"pad_token": pad} if pad else {}))
    if chat_template:
        fast.chat_template = chat_template
    return fast


def train_tokenizer(texts: Iterable[str], vocab_size: int = 4096) -> Any:
    """The testbed's tokenizer trained on ``texts``."""
    return build_bpe(texts, vocab_size, SPECIALS, eos=EOS, pad=PAD, chat_template=CHAT_TEMPLATE)
