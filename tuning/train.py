"""LoRA supervised fine-tuning: an explicit loop with atomic checkpoints, exact resume and cancellation.

Choices (documented because they differ between popular trainers):

* Loss: mean cross-entropy over the assistant tokens of a batch (HF ``labels`` semantics); examples whose
  assistant tokens were all truncated away are dropped up front (they would make the loss NaN). The LM
  head and the cross-entropy run only on the labelled positions, in chunks (:mod:`tuning.loss`): the
  ``tokens x vocab`` logits tensor never exists whole.
* Batching: a seeded permutation per epoch (seed, epoch) → windows of ``GROUP_WINDOW`` batches are sorted
  by length and cut into batches (little padding), then the batch order is shuffled. Layout
  (:data:`LAYOUTS`): ``packed`` concatenates a batch's examples into one row with positions restarting
  per example (no padding; varlen flash attention where installed, else a block-diagonal causal mask),
  ``padded`` right-pads to the longest sequence of the batch, ``reference`` is ``padded`` with HF's own
  full-logits loss (the implementation before issue #9, kept to check the others against and for the
  testbed build, whose cached models it reproduces bit for bit). All three see the same batches, so they
  give the same loss up to float rounding. ``auto``: packed on CUDA, padded on CPU (measured faster there
  by ``bench/throughput.py``: SDPA on CPU has no varlen kernel, the dense block mask costs more than the
  little padding that length grouping leaves).
* Memory (issue #18): a batch is cut into micro-batches of at most ``spec.micro_batch_tokens`` tokens
  (:func:`tuning.plan.micro_batches`; rows x padded width, or the packed length; a longer row is alone) whose
  gradients accumulate into one optimizer step: each micro-batch's loss is its cross-entropy sum divided by the
  labelled targets of the whole batch, so the step, the schedule and the loss are those of the batch. A
  micro-batch without padding carries no attention mask (SDPA runs ``is_causal``: flash / memory-efficient
  kernels, no seq² scores, on CPU as on CUDA); one whose activations would exceed
  :data:`tuning.plan.CHECKPOINT_ABOVE_BYTES` runs with activation checkpointing on the decoder layers
  (non-reentrant, works under peft). Memory then depends on the budget, not on the batch's longest rows.
* Host syncs: the loss is read from the device (``.item()``) only at log points (every step on CPU, where it
  is free; every ``LOG_EVERY`` steps, at checkpoints and at the end on CUDA); token counts come from the
  host-side lengths. Until the first read the metrics carry ``loss: None`` (never NaN), then the last value
  read. ``spec.emulate_cuda_path`` takes every CUDA branch on the CPU (loss cadence, packed layout, bf16
  autocast, fused AdamW) so tests can run them.
* Schedule (:func:`lr_factor`): linear warmup over ``warmup_ratio`` of the steps, then cosine to 0 (or
  constant). The testbed's pretraining runs the same loop (:class:`TrainLoop`) with its own optimizer, a
  fixed number of warmup steps and a floor for the cosine.
* Optimizer: AdamW on the trainable (LoRA) parameters; global grad-norm clipping when ``max_grad_norm > 0``.
* Checkpoints: ``out_dir/checkpoints/step-N`` written into a temp dir and renamed; ``trainer_state.json``
  is written last so only complete checkpoints are seen. A checkpoint stores a fingerprint of the data
  and spec; resuming onto different data or a different spec discards the old checkpoints.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import shutil
import time
from array import array
from collections.abc import Callable
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from tuning.atomic import atomic_dir
from tuning.data import collate, compact, encode_example, pack
from tuning.interfaces import NullProgress, Progress
from tuning.lora import attach_lora
from tuning.loss import causal_lm_loss, reference_loss
from tuning.memory import Checkpointing, model_shape, peak_memory_bytes, return_freed_memory
from tuning.plan import micro_batches, needs_checkpointing, total_steps
from tuning.specs import LoraSpec, TrainResult, TrainSpec, result_fields

log = logging.getLogger(__name__)
STATE = "trainer_state.json"
GROUP_WINDOW = 16  # batches per length-sorted window
LAYOUTS = ("auto", "packed", "padded", "reference")
LOG_EVERY = 10  # steps between loss reads on CUDA (a host sync each)


def _seed_all(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def _epoch_batches(lengths: list[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Indices of each batch of one epoch, a pure function of (lengths, batch_size, seed, epoch)."""
    g = torch.Generator().manual_seed(seed * 1000003 + epoch)
    order = torch.randperm(len(lengths), generator=g).tolist()
    window = batch_size * GROUP_WINDOW
    batches = []
    for w in range(0, len(order), window):
        chunk = sorted(order[w : w + window], key=lambda i: -lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]


def lr_factor(step: int, total: int, warmup: int, schedule: str = "cosine", floor: float = 0.0) -> float:
    """The learning-rate multiplier at ``step`` (0-based) of ``total``: linear warmup over ``warmup`` steps,
    then constant or a cosine from 1 down to ``floor``."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _fingerprint(encoded: list[dict], spec: TrainSpec) -> str:
    """Hash of the token data and the spec: a checkpoint only resumes the run it came from."""
    h = hashlib.sha256(json.dumps({**result_fields(spec), "n": len(encoded)}, sort_keys=True).encode())
    for e in encoded:  # int64 bytes of input_ids, -1, labels (lists or int32 arrays: the same hash)
        h.update(array("q", [*e["input_ids"], -1, *e["labels"]]).tobytes())
    return h.hexdigest()[:16]


def latest_checkpoint(out_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint dir under ``out_dir/checkpoints`` (None if there is none)."""
    root = Path(out_dir) / "checkpoints"
    done = [p for p in root.glob("step-*") if (p / STATE).exists()] if root.exists() else []
    return max(done, key=lambda p: int(p.name.split("-")[1]), default=None)


def _clean_partial(out_dir: Path) -> None:
    """Temp dirs of checkpoints/adapters interrupted mid-write."""
    for pattern in (".adapter-*", "checkpoints/.tmp-*"):
        for p in out_dir.glob(pattern):
            shutil.rmtree(p, ignore_errors=True)


def _rng_state() -> dict:
    state = {"rng": torch.get_rng_state(), "py_rng": random.getstate()}
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    return state


def _save_checkpoint(out_dir: Path, model: Any, optimizer: torch.optim.Optimizer, scheduler: Any, state: dict) -> Path:
    dest = out_dir / "checkpoints" / f"step-{state['step']}"
    with atomic_dir(dest, prefix=".tmp-") as tmp:
        model.save_pretrained(tmp)
        blob = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), **_rng_state()}
        torch.save(blob, tmp / "optim.pt")
        (tmp / STATE).write_text(json.dumps(state))  # written last: its presence marks a complete checkpoint
    return dest


def _restore(path: Path, model: Any, optimizer: torch.optim.Optimizer, scheduler: Any) -> dict:
    from peft import set_peft_model_state_dict

    set_peft_model_state_dict(model, load_file(str(path / "adapter_model.safetensors")))
    blob = torch.load(path / "optim.pt", weights_only=True)
    optimizer.load_state_dict(blob["optimizer"])
    scheduler.load_state_dict(blob["scheduler"])
    torch.set_rng_state(blob["rng"])
    random.setstate(blob["py_rng"])
    if "cuda_rng" in blob and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(blob["cuda_rng"])
    return json.loads((path / STATE).read_text())


def _save_final(out_dir: Path, model: Any) -> Path:
    dest = out_dir / "adapter"
    with atomic_dir(dest, prefix=".adapter-") as tmp:
        model.save_pretrained(tmp)
    return dest


def resolve_layout(layout: str, device: str) -> str:
    """``auto`` → ``packed`` on CUDA, ``padded`` elsewhere; other values are checked and returned."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown batch layout {layout!r}; one of {', '.join(LAYOUTS)}")
    if layout == "auto":
        return "packed" if device.startswith("cuda") else "padded"
    return layout


def _forward_loss(
    model: Any, batch: dict, device: str, layout: str = "padded", n_targets: int | None = None, amp: bool = False
) -> torch.Tensor:
    """The batch's loss; ``n_targets``: the denominator (a micro-batch's share of its batch's mean);
    ``amp``: bfloat16 autocast (on the CUDA path; also on CPU when it is emulated)."""
    batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    kind = "cuda" if device.startswith("cuda") else "cpu"
    with torch.autocast(kind, dtype=torch.bfloat16) if amp else nullcontext():
        if layout == "reference":
            return reference_loss(model, batch, n_targets)
        return causal_lm_loss(model, batch, n_targets=n_targets)


class TrainLoop:
    """The one training loop (LoRA fine-tuning and the testbed's full-parameter pretraining).

    Its state survives a checkpoint round-trip: step, epoch, batch index, tokens, loss. ``optimizer``
    (default AdamW on the trainable parameters with the spec's LR and weight decay), ``warmup_steps``
    (default ``warmup_ratio`` of the steps) and ``lr_floor`` (where the cosine ends) are for callers that
    train differently. Checkpoints go under ``out_dir`` every ``spec.checkpoint_every`` steps (neither 0 nor None).
    ``layout``: one of :data:`LAYOUTS` (the default ``reference`` keeps the testbed's pretraining bit for bit;
    :func:`train_lora` defaults to ``auto``). The layout is not part of the checkpoint fingerprint: all layouts
    train on the same batches, so a run may resume under another one.
    """

    def __init__(
        self,
        model: Any,
        encoded: list[dict],
        spec: TrainSpec,
        out_dir: Path | None,
        pad_id: int,
        optimizer: torch.optim.Optimizer | None = None,
        warmup_steps: int | None = None,
        lr_floor: float = 0.0,
        layout: str = "reference",
    ) -> None:
        self.model, self.encoded, self.spec, self.out_dir, self.pad_id = model, encoded, spec, out_dir, pad_id
        self.lengths = [len(e["input_ids"]) for e in encoded]
        self.device = next(model.parameters()).device.type
        self.cuda_path = self.device == "cuda" or spec.emulate_cuda_path
        self.layout = resolve_layout(layout, "cuda" if self.cuda_path else self.device)
        self.log_every = LOG_EVERY if self.cuda_path else 1
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.n_targets = [sum(lab != -100 for lab in e["labels"][1:]) for e in encoded]
        self.shape, self.checkpointing = model_shape(model), Checkpointing(model)
        self.act_bytes = 2 if self.cuda_path else next(iter(model.parameters())).element_size()
        self.memory = {"micro_batches": 0, "max_micro_batch_tokens": 0, "checkpointed_micro_batches": 0}
        fused = {"fused": True} if self.cuda_path else {}
        self.optimizer = optimizer or torch.optim.AdamW(
            self.params, lr=spec.learning_rate, weight_decay=spec.weight_decay, **fused
        )
        self.total = total_steps(len(encoded), spec.batch_size, spec.n_epochs)
        warmup = int(spec.warmup_ratio * self.total) if warmup_steps is None else warmup_steps
        schedule = partial(lr_factor, total=self.total, warmup=warmup, schedule=spec.lr_scheduler, floor=lr_floor)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        self.fingerprint = _fingerprint(encoded, spec)
        self._loss: torch.Tensor | None = None  # the last step's loss, still on the device
        self.state = {
            "step": 0,
            "epoch": 0,
            "batch": 0,
            "trained_tokens": 0,
            "loss": None,  # the last loss read from the device; None until the first read
            "fingerprint": self.fingerprint,
        }

    def resume(self, out_dir: Path) -> int:
        """Restore the newest checkpoint of this run (same fingerprint); the step resumed from, or 0."""
        ckpt = latest_checkpoint(out_dir)
        if ckpt is None:
            return 0
        if json.loads((ckpt / STATE).read_text()).get("fingerprint") != self.fingerprint:
            log.warning("checkpoints in %s belong to another run (data or spec changed): discarded", ckpt.parent)
            shutil.rmtree(ckpt.parent)
            return 0
        self.state = _restore(ckpt, self.model, self.optimizer, self.scheduler)
        return int(self.state["step"])

    def run(self, progress: Progress) -> bool:
        """Train to the end; False if stopped by ``progress.should_stop()``."""
        started, start_tokens = time.monotonic(), self.state["trained_tokens"]
        while self.state["epoch"] < self.spec.n_epochs:
            batches = _epoch_batches(self.lengths, self.spec.batch_size, self.spec.seed, self.state["epoch"])
            while self.state["batch"] < len(batches):
                if progress.should_stop():
                    self._read_loss(last=True)
                    return False
                self._train_batch(batches[self.state["batch"]])
                self._read_loss(last=self.state["step"] >= self.total)
                elapsed = max(time.monotonic() - started, 1e-6)
                progress.on_step(
                    self.state["step"],
                    self.total,
                    {
                        "loss": self.state["loss"],
                        "lr": self.scheduler.get_last_lr()[0],
                        "epoch": self.state["epoch"],
                        "trained_tokens": self.state["trained_tokens"],
                        "tokens_per_s": (self.state["trained_tokens"] - start_tokens) / elapsed,
                    },
                )
                self._maybe_checkpoint(progress)
            self.state["epoch"], self.state["batch"] = self.state["epoch"] + 1, 0
        return True

    def _batch(self, idx: list[int]) -> dict[str, torch.Tensor]:
        """A micro-batch's tensors; without padding there is no attention mask (SDPA then runs is_causal; the
        ``reference`` layout keeps its mask, so the testbed's cached models are still reproduced bit for bit)."""
        examples = [self.encoded[i] for i in idx]
        if self.layout == "packed":
            return pack(examples)
        batch = collate(examples, self.pad_id)
        if self.layout != "reference" and len({self.lengths[i] for i in idx}) == 1:
            del batch["attention_mask"]
        return batch

    def _read_loss(self, last: bool = False) -> None:
        """Copy the loss to the host (a sync on CUDA) at log points: every ``log_every`` steps and at the end."""
        every = self.spec.checkpoint_every
        due = last or self.state["step"] % self.log_every == 0 or bool(every and self.state["step"] % every == 0)
        if self._loss is not None and due:
            self.state["loss"] = float(self._loss)
            self._loss = None

    def _micro_step(self, idx: list[int], n_targets: int) -> torch.Tensor:
        """Forward and backward of one micro-batch (gradients accumulate); its share of the batch loss."""
        lengths = [self.lengths[i] for i in idx]
        tokens = sum(lengths) if self.layout == "packed" else len(idx) * max(lengths)
        ckpt = self.shape is not None and needs_checkpointing(self.shape, tokens, self.act_bytes)
        self.checkpointing.set(ckpt)
        try:
            loss = _forward_loss(self.model, self._batch(idx), self.device, self.layout, n_targets, self.cuda_path)
            loss.backward()
        finally:
            self.checkpointing.set(False)
        m = self.memory
        m["micro_batches"] += 1
        m["checkpointed_micro_batches"] += int(ckpt)
        m["max_micro_batch_tokens"] = max(m["max_micro_batch_tokens"], tokens)
        return loss.detach()

    def _train_batch(self, idx: list[int]) -> None:
        n_targets = sum(self.n_targets[i] for i in idx)
        padded = self.layout != "packed"
        parts = micro_batches([self.lengths[i] for i in idx], self.spec.micro_batch_tokens, padded)
        losses = [self._micro_step([idx[p] for p in part], n_targets) for part in parts]
        loss = losses[0] if len(losses) == 1 else torch.stack(losses).sum()
        if self.spec.max_grad_norm and self.spec.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.spec.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.state["step"] += 1
        self.state["batch"] += 1
        self.state["trained_tokens"] += sum(self.lengths[i] for i in idx)
        self._loss = loss.detach()

    def _maybe_checkpoint(self, progress: Progress) -> None:
        every = self.spec.checkpoint_every
        if every and self.out_dir is not None and self.state["step"] % every == 0 and self.state["step"] < self.total:
            path = _save_checkpoint(self.out_dir, self.model, self.optimizer, self.scheduler, self.state)
            progress.on_checkpoint(self.state["step"], str(path), dict(self.state))


def _encode_all(tokenizer: Any, examples: list[list[dict]], max_len: int) -> tuple[list[dict], int]:
    """Encoded examples that still have a labelled token after truncation, and how many were dropped."""
    kept = []
    for m in examples:  # compacted one at a time: the lists of Python ints never exist for the whole file
        e = encode_example(tokenizer, m, max_len)
        if any(lab != -100 for lab in e["labels"][1:]):
            kept.append(compact(e))
    if not kept:
        raise ValueError("no training example has an assistant token within max_seq_len")
    if len(kept) < len(examples):
        log.warning("%d examples have no assistant token within %d tokens: skipped", len(examples) - len(kept), max_len)
    return kept, len(examples) - len(kept)


def epoch_steps(tokenizer: Any, examples: list[list[dict]], spec: TrainSpec) -> int:
    """Optimizer steps per epoch that :func:`train_lora` takes on ``examples`` (unlabelled ones dropped)."""
    kept, _ = _encode_all(tokenizer, examples, spec.max_seq_len)
    return total_steps(len(kept), spec.batch_size, 1)


def _pad_id(tokenizer: Any) -> int:
    """The tokenizer's pad id, else its EOS id."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad is None:
        raise ValueError("tokenizer has neither a pad nor an eos token")
    return int(pad)


def train_lora(
    model: Any,
    tokenizer: Any,
    examples: list[list[dict]],
    spec: TrainSpec,
    lora: LoraSpec,
    out_dir: str,
    progress: Progress | None = None,
    init_adapter: str | None = None,
    resume: bool = True,
    valid_examples: list[list[dict]] | None = None,
    configure: Callable[[Any], None] | None = None,
    layout: str = "auto",
) -> TrainResult:
    """Fine-tune a LoRA on ``examples`` (normalized message lists); the adapter lands in ``out_dir/adapter``.

    ``init_adapter``: continue that adapter (see :func:`tuning.lora.attach_lora`). ``resume``: continue from
    the newest complete checkpoint of the same run. ``progress.should_stop()`` is polled before every
    step; when it says stop, the result has ``cancelled=True`` and no final adapter is written.
    ``configure(peft_model)`` may freeze parameters or add gradient hooks before the optimizer is built.
    ``valid_examples``: teacher-forced loss and token accuracy on them at the end (``metrics``).
    ``layout``: how batches are laid out and the loss computed (:data:`LAYOUTS`; same result up to rounding).
    """
    progress = progress or NullProgress()
    started = time.monotonic()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    return_freed_memory()  # host memory: freed activations leave the resident set (see tuning.memory)
    _seed_all(spec.seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _clean_partial(out)
    encoded, skipped = _encode_all(tokenizer, examples, spec.max_seq_len)
    peft_model = attach_lora(model, lora, init_adapter)
    if configure is not None:
        configure(peft_model)
    peft_model.train()
    loop = TrainLoop(peft_model, encoded, spec, out, _pad_id(tokenizer), layout=layout)
    resumed = loop.resume(out) if resume else 0
    finished = loop.run(progress)
    peft_model.eval()
    common = {
        "steps": loop.state["step"],
        "trained_tokens": loop.state["trained_tokens"],
        "final_loss": float("nan") if loop.state["loss"] is None else loop.state["loss"],
        "resumed_from_step": resumed,
    }
    if not finished:
        return TrainResult(adapter_dir="", wall_s=time.monotonic() - started, cancelled=True, **common)
    adapter_dir = _save_final(out, peft_model)
    metrics: dict = {"skipped_examples": skipped} if skipped else {}
    metrics.update(loop.memory, peak_memory_bytes=peak_memory_bytes(loop.device))
    if valid_examples:
        from tuning.evaluate import token_accuracy

        v = token_accuracy(peft_model, tokenizer, valid_examples, spec.micro_batch_tokens, max_len=spec.max_seq_len)
        metrics.update(valid_loss=v["loss"], valid_mean_token_accuracy=v["accuracy"])
    return TrainResult(adapter_dir=str(adapter_dir), wall_s=time.monotonic() - started, metrics=metrics, **common)
