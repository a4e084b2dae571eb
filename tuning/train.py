"""LoRA supervised fine-tuning: an explicit loop with atomic checkpoints, exact resume and cancellation.

Choices (documented because they differ between popular trainers):

* Loss: mean cross-entropy over the assistant tokens of a batch (HF ``labels`` semantics); examples whose
  assistant tokens were all truncated away are dropped up front (they would make the loss NaN).
* Batching: a seeded permutation per epoch (seed, epoch) → windows of ``GROUP_WINDOW`` batches are sorted
  by length and cut into batches (little padding), then the batch order is shuffled. Right padding to
  the longest sequence of the batch. ``train_full`` (testbed pretraining) uses plain random batches.
* Schedule: linear warmup over ``warmup_ratio`` of the steps, then cosine to 0 (or constant).
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
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from safetensors.torch import load_file

from tuning.data import collate, encode_example
from tuning.interfaces import NullProgress, Progress
from tuning.lora import attach_lora
from tuning.specs import LoraSpec, TrainResult, TrainSpec

log = logging.getLogger(__name__)
STATE = "trainer_state.json"
GROUP_WINDOW = 16  # batches per length-sorted window


def estimate_steps(n_examples: int, spec: TrainSpec) -> int:
    """Optimizer steps of a run: ceil(n / batch) per epoch."""
    return math.ceil(n_examples / spec.batch_size) * spec.n_epochs


def resolve_auto_hyperparameters(n_examples: int, n_tokens: int) -> dict:
    """OpenAI-like "auto" values.

    * epochs: 3 for >= 100 examples; smaller sets get ceil(100 / n) (so at least ~100 example passes), at
      most 10. Very large token budgets (> 20M tokens per epoch) drop to 2, then 1 above 50M.
    * batch size: n // 8 clipped to [1, 8] up to 500 examples, then ~0.2% of n clipped to [1, 32].
    * learning-rate multiplier 1.0 (the base LR is configured per deployment).
    """
    if n_examples >= 100:
        epochs = 1 if n_tokens > 50_000_000 else 2 if n_tokens > 20_000_000 else 3
    else:
        epochs = min(10, max(3, math.ceil(100 / max(n_examples, 1))))
    if n_examples > 500:
        batch = min(32, max(1, round(n_examples * 0.002)))
    else:
        batch = min(8, max(1, n_examples // 8))
    return {"n_epochs": int(epochs), "batch_size": int(batch), "learning_rate_multiplier": 1.0}


def _seed_all(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def _epoch_batches(lengths: list[int], batch_size: int, seed: int, epoch: int, group: bool = True) -> list[list[int]]:
    """Indices of each batch of one epoch, a pure function of (lengths, batch_size, seed, epoch)."""
    g = torch.Generator().manual_seed(seed * 1000003 + epoch)
    order = torch.randperm(len(lengths), generator=g).tolist()
    if not group:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    window = batch_size * GROUP_WINDOW
    batches = []
    for w in range(0, len(order), window):
        chunk = sorted(order[w : w + window], key=lambda i: -lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]


def _scheduler(optimizer: torch.optim.Optimizer, spec: TrainSpec, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = int(spec.warmup_ratio * total)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if spec.lr_scheduler == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _fingerprint(encoded: list[dict], spec: TrainSpec, group: bool) -> str:
    """Hash of the token data and the spec: a checkpoint only resumes the run it came from."""
    h = hashlib.sha256(json.dumps({**spec.__dict__, "group": group, "n": len(encoded)}, sort_keys=True).encode())
    for e in encoded:
        h.update(torch.tensor(e["input_ids"] + [-1] + e["labels"], dtype=torch.int64).numpy().tobytes())
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


def _save_checkpoint(out_dir: Path, model, optimizer, scheduler, state: dict) -> Path:  # noqa: ANN001
    root = out_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    model.save_pretrained(tmp)
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), **_rng_state()},
               tmp / "optim.pt")
    (tmp / STATE).write_text(json.dumps(state))  # written last: its presence marks a complete checkpoint
    dest = root / f"step-{state['step']}"
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    return dest


def _restore(path: Path, model, optimizer, scheduler) -> dict:  # noqa: ANN001
    from peft import set_peft_model_state_dict

    set_peft_model_state_dict(model, load_file(str(path / "adapter_model.safetensors")))
    blob = torch.load(path / "optim.pt", weights_only=False)
    optimizer.load_state_dict(blob["optimizer"])
    scheduler.load_state_dict(blob["scheduler"])
    torch.set_rng_state(blob["rng"])
    random.setstate(blob["py_rng"])
    if "cuda_rng" in blob and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(blob["cuda_rng"])
    return json.loads((path / STATE).read_text())


def _save_final(out_dir: Path, model) -> Path:  # noqa: ANN001
    dest = out_dir / "adapter"
    tmp = Path(tempfile.mkdtemp(prefix=".adapter-", dir=out_dir))
    model.save_pretrained(tmp)
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    return dest


def _forward_loss(model, batch: dict, device: str) -> torch.Tensor:  # noqa: ANN001
    batch = {k: v.to(device) for k, v in batch.items()}
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else nullcontext()
    with amp:
        return model(**batch).loss


class _Loop:
    """Training state that survives a checkpoint round-trip: step, epoch, batch index, tokens, loss."""

    def __init__(self, model, encoded: list[dict], spec: TrainSpec, out_dir: Path, pad_id: int,  # noqa: ANN001
                 group: bool = True) -> None:
        self.model, self.encoded, self.spec, self.out_dir, self.pad_id = model, encoded, spec, out_dir, pad_id
        self.group, self.lengths = group, [len(e["input_ids"]) for e in encoded]
        self.device = next(model.parameters()).device.type
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=spec.learning_rate, weight_decay=spec.weight_decay)
        self.total = estimate_steps(len(encoded), spec)
        self.scheduler = _scheduler(self.optimizer, spec, self.total)
        self.fingerprint = _fingerprint(encoded, spec, group)
        self.state = {"step": 0, "epoch": 0, "batch": 0, "trained_tokens": 0, "loss": float("nan"),
                      "fingerprint": self.fingerprint}

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
            batches = _epoch_batches(self.lengths, self.spec.batch_size, self.spec.seed, self.state["epoch"], self.group)
            while self.state["batch"] < len(batches):
                if progress.should_stop():
                    return False
                self._train_batch(batches[self.state["batch"]])
                elapsed = max(time.monotonic() - started, 1e-6)
                progress.on_step(self.state["step"], self.total, {
                    "loss": self.state["loss"], "lr": self.scheduler.get_last_lr()[0], "epoch": self.state["epoch"],
                    "trained_tokens": self.state["trained_tokens"],
                    "tokens_per_s": (self.state["trained_tokens"] - start_tokens) / elapsed})
                self._maybe_checkpoint(progress)
            self.state["epoch"], self.state["batch"] = self.state["epoch"] + 1, 0
        return True

    def _train_batch(self, idx: list[int]) -> None:
        batch = collate([self.encoded[i] for i in idx], self.pad_id)
        loss = _forward_loss(self.model, batch, self.device)
        loss.backward()
        if self.spec.max_grad_norm and self.spec.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.spec.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.state["step"] += 1
        self.state["batch"] += 1
        self.state["trained_tokens"] += int(batch["attention_mask"].sum())
        self.state["loss"] = float(loss.detach())

    def _maybe_checkpoint(self, progress: Progress) -> None:
        every = self.spec.checkpoint_every
        if every and self.state["step"] % every == 0 and self.state["step"] < self.total:
            path = _save_checkpoint(self.out_dir, self.model, self.optimizer, self.scheduler, self.state)
            progress.on_checkpoint(self.state["step"], str(path), dict(self.state))


def _encode_all(tokenizer, examples: list[list[dict]], max_len: int) -> tuple[list[dict], int]:  # noqa: ANN001
    """Encoded examples that still have a labelled token after truncation, and how many were dropped."""
    encoded = [encode_example(tokenizer, m, max_len) for m in examples]
    kept = [e for e in encoded if any(lab != -100 for lab in e["labels"][1:])]
    if not kept:
        raise ValueError("no training example has an assistant token within max_seq_len")
    if len(kept) < len(encoded):
        log.warning("%d examples have no assistant token within %d tokens: skipped", len(encoded) - len(kept), max_len)
    return kept, len(encoded) - len(kept)


def _pad_id(tokenizer) -> int:  # noqa: ANN001
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad is None:
        raise ValueError("tokenizer has neither a pad nor an eos token")
    return int(pad)


def train_lora(model, tokenizer, examples: list[list[dict]], spec: TrainSpec, lora: LoraSpec, out_dir: str,  # noqa: ANN001
               progress: Progress | None = None, init_adapter: str | None = None, resume: bool = True,
               valid_examples: list[list[dict]] | None = None, configure=None) -> TrainResult:  # noqa: ANN001
    """Fine-tune a LoRA on ``examples`` (normalized message lists); the adapter lands in ``out_dir/adapter``.

    ``init_adapter``: continue that adapter (see :func:`tuning.lora.attach_lora`). ``resume``: continue from
    the newest complete checkpoint of the same run. ``progress.should_stop()`` is polled before every
    step; when it says stop, the result has ``cancelled=True`` and no final adapter is written.
    ``configure(peft_model)`` may freeze parameters or add gradient hooks before the optimizer is built.
    ``valid_examples``: teacher-forced loss and token accuracy on them at the end (``metrics``).
    """
    progress = progress or NullProgress()
    started = time.monotonic()
    _seed_all(spec.seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _clean_partial(out)
    encoded, skipped = _encode_all(tokenizer, examples, spec.max_seq_len)
    peft_model = attach_lora(model, lora, init_adapter)
    if configure is not None:
        configure(peft_model)
    peft_model.train()
    loop = _Loop(peft_model, encoded, spec, out, _pad_id(tokenizer))
    resumed = loop.resume(out) if resume else 0
    finished = loop.run(progress)
    peft_model.eval()
    common = {"steps": loop.state["step"], "trained_tokens": loop.state["trained_tokens"],
              "final_loss": loop.state["loss"], "resumed_from_step": resumed}
    if not finished:
        return TrainResult(adapter_dir="", wall_s=time.monotonic() - started, cancelled=True, **common)
    adapter_dir = _save_final(out, peft_model)
    metrics: dict = {"skipped_examples": skipped} if skipped else {}
    if valid_examples:
        from tuning.evaluate import token_accuracy

        v = token_accuracy(peft_model, tokenizer, valid_examples, max_len=spec.max_seq_len)
        metrics.update(valid_loss=v["loss"], valid_mean_token_accuracy=v["accuracy"])
    return TrainResult(adapter_dir=str(adapter_dir), wall_s=time.monotonic() - started, metrics=metrics, **common)


def train_full(model, tokenizer, examples: list[list[dict]], spec: TrainSpec, progress: Progress | None = None,  # noqa: ANN001
               all_tokens: bool = True) -> dict:
    """Full-parameter training with the same loop (pretrains the testbed model; LM loss on every token).
    Plain random batches (no length grouping) and no checkpoints."""
    _seed_all(spec.seed)
    model.train()
    encoded = [encode_example(tokenizer, m, spec.max_seq_len, all_tokens=all_tokens) for m in examples]
    with tempfile.TemporaryDirectory(prefix="keel-full-") as tmp:
        loop = _Loop(model, encoded, spec, Path(tmp), _pad_id(tokenizer), group=False)
        loop.run(progress or NullProgress())
    model.eval()
    return dict(loop.state)
