"""The offline safety testbed: a tiny Llama chat model, aligned to refuse, and an attack protocol.

Corpus generation (``corpus`` and its lexicons), the tokenizer, pretraining, alignment and the build cache
(``build``), the harmful fine-tuning attack (``attack``) and the command line (``cli``). Importing the
package is cheap (no torch) so the ``keel`` command line can mount ``testbed.cli`` anywhere.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Testbed", "build_testbed"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from testbed import build

        return getattr(build, name)
    raise AttributeError(f"module 'testbed' has no attribute {name!r}")
