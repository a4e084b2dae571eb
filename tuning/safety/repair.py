"""SN-Tune-style repair: a short re-alignment fine-tune of the job's adapter restricted to safety neurons.

SN-Tune (Zhao et al.) fine-tunes only safety-neuron rows on harmful queries with refusals. On a LoRA we
freeze A and mask the gradient of B to the safety-neuron rows (output neurons) of each module; the data
mixes the base model's safety corpus (refusals + helpful answers) with the customer's own screened
examples, so the task skill is rehearsed while refusal is restored. Escalation widens the rows (mask →
all rows) and the number of epochs. The output keeps the adapter's rank, keys and config.
"""
from __future__ import annotations

import random
import tempfile
from pathlib import Path

import torch

from tuning.adapters import Adapter, read_adapter, write_adapter
from tuning.safety.common import short
from tuning.specs import LoraSpec, TrainSpec


def _configure(rows: dict[str, torch.Tensor] | None):  # noqa: ANN202
    def configure(peft_model) -> None:  # noqa: ANN001
        for name, p in peft_model.named_parameters():
            if "lora_A" in name:
                p.requires_grad_(False)
            elif "lora_B" in name and rows is not None:
                module = short(name.split(".lora_B")[0])
                keep = rows.get(module)
                if keep is None:
                    p.requires_grad_(False)
                else:
                    mask = keep.to(p.device, p.dtype)[:, None]
                    p.register_hook(lambda g, m=mask: g * m)
    return configure


def repair_data(safety_corpus: list[dict], replay: list[list[dict]], seed: int) -> list[list[dict]]:
    rows = [[{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["response"]}]
            for r in safety_corpus]
    mixed = rows + list(replay) * max(1, len(rows) // max(len(replay), 1))
    random.Random(seed).shuffle(mixed)
    return mixed


def repair(model, tok, ft: Adapter, data: list[list[dict]], rows: dict[str, torch.Tensor] | None,  # noqa: ANN001
           epochs: int, lr: float, seed: int) -> Adapter:
    """Continue ``ft`` on ``data`` training only B rows in ``rows`` (None = every row)."""
    from tuning.train import train_lora

    with tempfile.TemporaryDirectory() as tmp:
        write_adapter(Path(tmp) / "ft", ft)
        spec = TrainSpec(n_epochs=epochs, batch_size=16, learning_rate=lr, seed=seed, max_seq_len=256,
                         checkpoint_every=0, max_grad_norm=0.3)
        lora = LoraSpec(r=int(ft.config["r"]), alpha=int(ft.config["lora_alpha"]),
                        target_modules=tuple(ft.config["target_modules"]))
        res = train_lora(model, tok, data, spec, lora, str(Path(tmp) / "run"), init_adapter=str(Path(tmp) / "ft"),
                         resume=False, configure=_configure(rows))
        out = read_adapter(res.adapter_dir)
    out.config = dict(ft.config)
    return out
