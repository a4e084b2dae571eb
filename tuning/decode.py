"""Greedy decoding with the KV cache that drops a row from the batch as soon as it is finished.

A row is finished at a stop token (as in ``model.generate``) or, when ``decided`` is given, as soon as
``decided(text so far)`` is true (e.g. the judge's verdict can no longer change: a refusal marker was seen).
The remaining rows continue with their slice of the cache, so a batch costs what its longest *undecided* row
costs, not what its longest row costs. The tokens are the ones ``model.generate(do_sample=False)`` produces
for the same left-padded batch (tests compare the two).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from tuning.data import encode_prompts


def _device(model: Any) -> torch.device:
    return next(model.parameters()).device


def _finished(tokenizer: Any, ids: list[int], stop: set[int], decided: Callable[[str], bool] | None) -> bool:
    if ids[-1] in stop:
        return True
    return decided is not None and decided(tokenizer.decode(ids, skip_special_tokens=True))


class _Batch:
    """The rows still being decoded: their original indices, attention mask, next positions and cache."""

    def __init__(self, model: Any, enc: dict[str, torch.Tensor]) -> None:
        from transformers import DynamicCache

        self.model, self.mask = model, enc["attention_mask"]
        self.rows = list(range(self.mask.shape[0]))
        self.cache = DynamicCache(config=model.config)
        pos = (self.mask.long().cumsum(-1) - 1).masked_fill(self.mask == 0, 0)
        self.pos = pos[:, -1:]
        self.logits = self._forward(enc["input_ids"], pos)

    def _forward(self, ids: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        out = self.model(
            input_ids=ids,
            attention_mask=self.mask,
            position_ids=pos,
            past_key_values=self.cache,
            use_cache=True,
            logits_to_keep=1,
        )
        return out.logits[:, -1]

    def keep(self, kept: list[int]) -> None:
        """Keep only the batch positions ``kept`` (indices into the current rows)."""
        idx = torch.tensor(kept, device=self.mask.device)
        self.cache.batch_select_indices(idx)
        self.mask, self.pos = self.mask[idx], self.pos[idx]
        self.rows = [self.rows[i] for i in kept]

    def step(self, tokens: torch.Tensor) -> None:
        self.mask = torch.cat([self.mask, self.mask.new_ones((self.mask.shape[0], 1))], dim=1)
        self.pos = self.pos + 1
        self.logits = self._forward(tokens[:, None], self.pos)


@torch.inference_mode()
def greedy_batch(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    max_new_tokens: int,
    stop_ids: list[int],
    decided: Callable[[str], bool] | None = None,
) -> list[list[int]]:
    """New token ids per prompt (single-turn user chats, left padded), the stop token included when reached."""
    if not prompts or max_new_tokens <= 0:
        return [[] for _ in prompts]
    batch = _Batch(model, encode_prompts(tokenizer, prompts).to(_device(model)))
    out: list[list[int]] = [[] for _ in prompts]
    stop = set(stop_ids)
    for step in range(max_new_tokens):
        nxt = batch.logits.argmax(-1)
        kept = []
        for j, (row, tok) in enumerate(zip(batch.rows, nxt.tolist(), strict=True)):
            out[row].append(tok)
            if not _finished(tokenizer, out[row], stop, decided):
                kept.append(j)
        if not kept or step == max_new_tokens - 1:
            break
        if len(kept) < len(batch.rows):
            batch.keep(kept)
            nxt = nxt[torch.tensor(kept, device=nxt.device)]
        batch.step(nxt)
    return out
