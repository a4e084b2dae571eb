"""The offline safety testbed: a tiny Llama chat model, aligned to refuse, and an attack protocol.

Corpus generation (``corpus`` and its lexicons), the tokenizer, pretraining, alignment and the build cache
(``build``), the harmful fine-tuning attack (``attack``) and the command line (``cli``).
"""

from testbed.build import Testbed, build_testbed

__all__ = ["Testbed", "build_testbed"]
