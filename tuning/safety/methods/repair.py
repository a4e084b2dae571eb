"""SN-Tune-style repair: a short re-alignment fine-tune of the job's adapter restricted to safety neurons.

SN-Tune (Zhao et al.) fine-tunes only safety-neuron rows on harmful queries with refusals. On a LoRA we
freeze A and mask the gradient of B to the safety-neuron rows (output neurons) of each module; the data
mixes the base model's safety corpus (refusals + helpful answers) with the customer's own screened
examples, so the task skill is rehearsed while refusal is restored. Escalation (the ``repair`` ladder in
:mod:`tuning.safety.registry`) widens the rows (mask → all rows) and the number of epochs. The output keeps
the adapter's rank, keys and config.
"""

from __future__ import annotations

import copy
import hashlib
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import torch

from tuning.adapters import Adapter, read_adapter, write_adapter
from tuning.interfaces import NullProgress, Progress, StopOnly, Stopped
from tuning.rows import conversation
from tuning.safety.common import change_info, short
from tuning.safety.registry import MethodInputs, Strategy
from tuning.specs import LoraSpec, TrainSpec


@dataclass(frozen=True)
class RepairConfig:
    """SN-Tune-style repair: a short fine-tune of B restricted to safety-neuron rows (or all rows)."""

    rows: Literal["neurons", "all"] = "neurons"
    epochs: int = 1
    run_epochs: int = 0  # > epochs: this rung is epoch ``epochs`` of one run of ``run_epochs`` epochs (0: epochs)
    lr: float = 2e-3
    seed: int = 0
    batch_size: int = 16
    max_seq_len: int = 256
    max_grad_norm: float = 0.3


Config = RepairConfig

# (rows, epochs, learning rate, run epochs), weakest first. The all-rows rungs are one training run of 3 epochs
# evaluated after each epoch (early stopping): rung k costs one epoch more than rung k-1, not k epochs from scratch.
REPAIR_LADDER: tuple[tuple[Literal["neurons", "all"], int, float, int], ...] = (
    ("neurons", 1, 2e-3, 1),
    ("all", 1, 2e-3, 3),
    ("all", 2, 2e-3, 3),
    ("all", 3, 2e-3, 3),
)


def ladder(seed: int) -> list[Strategy]:
    return [
        Strategy(
            "repair",
            RepairConfig(rows=rows, epochs=ep, lr=lr, seed=seed, run_epochs=run),
            f"sn-repair({rows}, {ep} epoch{'s' if ep > 1 else ''})",
        )
        for rows, ep, lr, run in REPAIR_LADDER
    ]


def default(seed: int) -> Strategy:
    return ladder(seed)[0]


def apply(inputs: MethodInputs, cfg: RepairConfig) -> tuple[Adapter, dict]:
    """Repair on the safety corpus plus the job's screened replay rows, training a copy of the scoring model
    (which must stay pristine between evaluations); the rungs of one run resume in the stage's scratch."""
    data = repair_data(inputs.sets.safety_corpus, inputs.sets.replay_examples, cfg.seed)
    fresh = copy.deepcopy(inputs.model)
    run_dir = None
    if cfg.run_epochs > 1 and inputs.scratch is not None:  # one directory per run: its rungs resume there
        run_dir = str(Path(inputs.scratch()) / run_id(cfg))
    progress = StopOnly(inputs.should_stop)
    return repair(fresh, inputs.tok, inputs.ft, inputs.masks, data, cfg, progress=progress, run_dir=run_dir)


def safety_rows(masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Union of the SN-Tune and FGSN row masks, keyed by module (gate_proj shares up_proj's neurons)."""
    rows: dict[str, torch.Tensor] = {}
    for key, mask in masks.items():
        src, _, module = key.partition("/")
        if src in ("sn_tune", "fgsn"):
            names = [module, module.replace("up_proj", "gate_proj")] if module.endswith("up_proj") else [module]
            for name in names:
                rows[name] = rows.get(name, torch.zeros_like(mask, dtype=torch.bool)) | mask.bool()
    return rows


def repair_data(safety_corpus: list[dict], replay: list[list[dict]], seed: int) -> list[list[dict]]:
    """The safety corpus as chats plus the customer's (screened) examples repeated to about the same size."""
    rows = [conversation(r["prompt"], r["response"]) for r in safety_corpus]
    mixed = rows + list(replay) * max(1, len(rows) // max(len(replay), 1))
    random.Random(seed).shuffle(mixed)
    return mixed


def _configure(rows: dict[str, torch.Tensor] | None) -> Callable[[Any], None]:
    def configure(peft_model: Any) -> None:
        for name, p in peft_model.named_parameters():
            if "lora_A" in name:
                p.requires_grad_(False)
            elif "lora_B" in name and rows is not None:
                keep = rows.get(short(name.split(".lora_B")[0]))
                if keep is None:
                    p.requires_grad_(False)
                else:
                    mask = keep.to(p.device, p.dtype)[:, None]
                    p.register_hook(lambda g, m=mask: g * m)

    return configure


def run_id(cfg: RepairConfig, ft: Adapter | None = None) -> str:
    """Names the training run a rung belongs to: the same for every rung of one run (``cfg`` without its
    ``epochs``), and, given ``ft``, different for each adapter the run continues."""
    h = hashlib.sha256(repr(replace(cfg, epochs=0)).encode())
    for t in ft.state.values() if ft is not None else ():
        h.update(t.detach().cpu().numpy().tobytes())
    return h.hexdigest()[:12]


class _StopAt(NullProgress):
    """Relays the caller's cancellation and stops the run once it has taken ``step`` optimizer steps."""

    def __init__(self, step: int, outer: Progress | None) -> None:
        self.step, self.outer, self.done = step, outer, 0

    def on_step(self, step: int, total_steps: int, metrics: dict) -> None:
        self.done = step

    def should_stop(self) -> bool:
        return self.done >= self.step or bool(self.outer and self.outer.should_stop())


def repair(
    model: Any,
    tok: Any,
    ft: Adapter,
    masks: dict[str, torch.Tensor],
    data: list[list[dict]],
    cfg: RepairConfig,
    progress: Progress | None = None,
    run_dir: str | None = None,
) -> tuple[Adapter, dict]:
    """Continue ``ft`` on ``data`` training only the B rows of the safety neurons (``cfg.rows == "neurons"``)
    or every B row. ``model`` is a plain base model that training may modify.

    With ``cfg.run_epochs > cfg.epochs`` the result is the adapter after ``cfg.epochs`` epochs of one run of
    ``cfg.run_epochs`` (its learning-rate schedule spans the whole run); that run checkpoints each epoch in
    ``run_dir`` (a temporary directory when None), so the next rung of the same run resumes there instead of
    starting over."""
    from tuning.train import epoch_steps, train_lora

    rows = safety_rows(masks) if cfg.rows == "neurons" else None
    run_epochs = max(cfg.run_epochs, cfg.epochs)
    spec = TrainSpec(
        n_epochs=run_epochs,
        batch_size=cfg.batch_size,
        learning_rate=cfg.lr,
        seed=cfg.seed,
        max_seq_len=cfg.max_seq_len,
        checkpoint_every=0,
        max_grad_norm=cfg.max_grad_norm,
    )
    per_epoch = epoch_steps(tok, data, spec)
    if cfg.run_epochs > 1:  # every rung of the run checkpoints alike (the spec is part of a checkpoint's identity)
        spec = replace(spec, checkpoint_every=per_epoch)
    lora = LoraSpec(
        r=int(ft.config["r"]), alpha=int(ft.config["lora_alpha"]), target_modules=tuple(ft.config["target_modules"])
    )
    stop = _StopAt(per_epoch * cfg.epochs, progress)
    with tempfile.TemporaryDirectory() as tmp:
        write_adapter(Path(tmp) / "ft", ft)
        run = Path(run_dir) if run_dir else Path(tmp) / "run"
        res = train_lora(
            model,
            tok,
            data,
            spec,
            lora,
            str(run),
            init_adapter=str(Path(tmp) / "ft"),
            resume=run_dir is not None,
            configure=_configure(rows),
            progress=stop,
        )
        if res.cancelled and res.steps < stop.step:
            raise Stopped("repair training stopped")
        out = read_adapter(res.adapter_dir or run / "checkpoints" / f"step-{stop.step}")
    out.config = dict(ft.config)
    changed = {
        m: int(rows[short(m)].sum()) if rows is not None else int(ft.pair(m)[1].shape[0])
        for m in ft.modules()
        if rows is None or short(m) in rows
    }
    steps = {"repair_steps": res.steps - res.resumed_from_step, "repair_resumed_from_step": res.resumed_from_step}
    return out, {**change_info(changed), "repair_examples": len(data), **steps}
