"""Training throughput (issue #9): Keel's ``train_lora`` vs plain ``transformers.Trainer`` + peft, in one process.

Same model, same chat rows (the testbed's task, safety-alignment and general chats, some joined into
multi-turn conversations, so lengths spread from a few tokens to ``--max-len``), same LoRA, same number of
optimizer steps over the same examples (one epoch; a multiple of the batch size), same LoRA initialisation,
constant learning rate, AdamW, clipping at 1.0. ``--baseline-order``:

  random  the Trainer's own seeded random sampler, as a plain Trainer run does (default): Keel's length
          grouping counts in its favour; losses agree within noise (other batch compositions)
  keel    the Trainer reads the examples sequentially in the order of Keel's length-grouped batches, so both
          runs see identical batches: losses must agree to rounding, the ratio isolates everything but
          length grouping

  (a) Keel: ``tuning.train.train_lora`` (``--layout``: auto = packed on CUDA, padded on CPU)
  (b) ``transformers.Trainer`` with ``DataCollatorForSeq2Seq`` (right padding, labels -100 on padding and on
      everything but the assistant turns: the same labels as Keel)

Printed: real (non-pad) tokens/s of each and their ratio, peak RSS above the process's RSS before the run
(and peak CUDA memory on GPU), the mean training loss over the last ``--log-every`` steps and the loss of
the trained adapter on a fixed held-out set (both computed by the same reference function): the two runs
must agree within noise. Wall time includes encoding the rows, attaching the LoRA and saving the adapter.

    python -m bench.throughput                      # the testbed model (built once, cached)
    python -m bench.throughput --model PATH         # any HF causal LM dir (e.g. SmolLM2-135M-Instruct)
    python -m bench.throughput --untrained-testbed  # testbed shape and tokenizer, random weights (no build)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from tuning.data import collate, encode_example
from tuning.loss import reference_loss
from tuning.modeling import load_model, pick_device
from tuning.rows import conversation
from tuning.specs import LoraSpec, TrainSpec
from tuning.train import _epoch_batches, resolve_layout

LORA = LoraSpec(r=8, alpha=16)


def chat_rows(seed: int, n: int) -> list[list[dict]]:
    """``n`` chats from the testbed corpus: task (short answers), safety alignment (refusals and helpful
    answers) and general chats, a third of them joined into 2-4 turn conversations."""
    from testbed import corpus

    splits = corpus.generate(seed, n_pretrain=max(n, 200), n_align=max(n, 200), n_task=max(n, 200), n_eval=20)
    singles = (
        [conversation(t["prompt"], t["label"]) for t in splits.task_train]
        + [conversation(r["prompt"], r["response"]) for r in splits.align]
        + [conversation(r["prompt"], r["response"]) for r in splits.pretrain]
    )
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        turns = rng.choice([1, 1, 2, 3, 4]) if rng.random() < 0.5 else 1
        out.append([m for _ in range(turns) for m in rng.choice(singles)])
    return out


def untrained_testbed(dest: Path, seed: int) -> str:
    """The testbed's architecture and tokenizer with random weights (throughput does not depend on them)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from testbed import corpus
    from testbed.build import CORPUS, MODEL, VOCAB, _tokenizer_texts
    from testbed.tokenizer import train_tokenizer

    tok = train_tokenizer(_tokenizer_texts(corpus.generate(seed, **CORPUS)), VOCAB)
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tok), pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None, **MODEL
    )
    LlamaForCausalLM(cfg).save_pretrained(dest)
    tok.save_pretrained(dest)
    return str(dest)


class PeakMemory:
    """Peak RSS (sampled every 5 ms from /proc/self/statm) above the RSS at start; peak CUDA memory."""

    def __init__(self) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> PeakMemory:
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    def report(self) -> dict:
        out = {"peak_rss_mib": round((self.peak - self.base) / 2**20, 1)}
        if torch.cuda.is_available():
            out["peak_cuda_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        return out


class _Losses:
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_step(self, step: int, total_steps: int, metrics: dict[str, Any]) -> None:
        if metrics["loss"] is not None:  # None until the first read (every 10 steps on CUDA)
            self.losses.append(float(metrics["loss"]))

    def on_checkpoint(self, step: int, path: str, metrics: dict[str, Any]) -> None:
        pass

    def should_stop(self) -> bool:
        return False


@contextmanager
def _timed(result: dict) -> Any:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t = time.perf_counter()
    with PeakMemory() as mem:
        yield
        if torch.cuda.is_available():
            torch.cuda.synchronize()
    result["wall_s"] = time.perf_counter() - t
    result.update(mem.report())


def _eval_loss(model: Any, tok: Any, encoded: list[dict], device: str) -> float:
    """Token-weighted reference loss of ``model`` on ``encoded`` (fixed held-out chats)."""
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(encoded), 16):
            chunk = encoded[s : s + 16]
            batch = {k: v.to(device) for k, v in collate(chunk, tok.pad_token_id).items()}
            k = int((batch["labels"][:, 1:] != -100).sum())
            total, n = total + reference_loss(model, batch).float().item() * k, n + k
    return total / max(n, 1)


def run_keel(args: argparse.Namespace, rows: list, held: list, device: str, dtype: Any, out: Path) -> dict:
    from tuning.train import train_lora

    model, tok = load_model(args.model, device=device, dtype=dtype)
    rec, res = _Losses(), {}
    spec = _spec(args, len(rows))
    with _timed(res):
        r = train_lora(model, tok, rows, spec, LORA, str(out / "keel"), progress=rec, resume=False, layout=args.layout)
    res.update(steps=r.steps, tokens=r.trained_tokens, losses=rec.losses)
    res["eval_loss"] = _eval_loss(model, tok, held, device)  # peft injected the trained LoRA into ``model``
    return res


class _Counting:
    """The collator, counting the padded tokens it produces (to report the baseline's padding)."""

    def __init__(self, collator: Any) -> None:
        self.collator, self.padded = collator, 0

    def __call__(self, features: list[dict]) -> dict:
        batch = self.collator(features)
        self.padded += batch["input_ids"].numel()
        return batch


def run_trainer(args: argparse.Namespace, rows: list, held: list, device: str, dtype: Any, out: Path) -> dict:
    from peft import LoraConfig, get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    model, tok = load_model(args.model, device=device, dtype=dtype)
    res: dict = {}
    spec = _spec(args, len(rows))
    with _timed(res):
        torch.manual_seed(spec.seed)  # as train_lora: the same LoRA initialisation
        encoded = [encode_example(tok, m, spec.max_seq_len) for m in rows]
        order = list(range(len(encoded)))
        if args.baseline_order == "keel":
            lengths = [len(e["input_ids"]) for e in encoded]
            order = [i for b in _epoch_batches(lengths, spec.batch_size, spec.seed, 0) for i in b]
        peft_model = get_peft_model(
            model,
            LoraConfig(
                r=LORA.r,
                lora_alpha=LORA.alpha,
                lora_dropout=LORA.dropout,
                target_modules=list(LORA.target_modules),
                bias="none",
                task_type="CAUSAL_LM",
            ),
        )
        targs = TrainingArguments(
            output_dir=str(out / "trainer"),
            per_device_train_batch_size=spec.batch_size,
            num_train_epochs=1,
            learning_rate=spec.learning_rate,
            lr_scheduler_type="constant",
            warmup_steps=0,
            weight_decay=0.0,
            max_grad_norm=spec.max_grad_norm,
            logging_steps=args.log_every,
            save_strategy="no",
            report_to=[],
            train_sampling_strategy="sequential" if args.baseline_order == "keel" else "random",
            seed=spec.seed,
            bf16=device == "cuda",
            use_cpu=device != "cuda",
            disable_tqdm=True,
            dataloader_num_workers=0,
        )
        collator = _Counting(DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100, return_tensors="pt"))
        trainer = Trainer(
            model=peft_model,
            args=targs,
            train_dataset=[encoded[i] for i in order],
            data_collator=collator,
        )
        trainer.train()
        peft_model.save_pretrained(out / "trainer" / "adapter")
    res.update(
        steps=trainer.state.global_step,
        tokens=sum(len(e["input_ids"]) for e in encoded),
        padded_tokens=collator.padded,
        window_losses=[h["loss"] for h in trainer.state.log_history if "loss" in h],
    )
    res["eval_loss"] = _eval_loss(peft_model, tok, held, device)
    return res


def _spec(args: argparse.Namespace, n: int) -> TrainSpec:
    return TrainSpec(
        n_epochs=1,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        max_seq_len=args.max_len,
        checkpoint_every=0,
        warmup_ratio=0.0,
        lr_scheduler="constant",
    )


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="HF causal LM dir (default: the testbed's base model, built and cached)")
    ap.add_argument("--untrained-testbed", action="store_true", help="testbed shape, random weights: no build")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-len", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layout", default="auto", help="Keel's batch layout: auto, packed, padded, reference")
    ap.add_argument("--baseline-order", default="random", choices=["random", "keel"], help="see the module doc")
    ap.add_argument("--log-every", type=int, default=10, help="steps per loss window (the Trainer's logging_steps)")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--order", default="ab", choices=["ab", "ba"], help="which run goes first")
    ap.add_argument("--warmup-steps", type=int, default=2, help="untimed short run of each first (0: none)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device()
    dtype = torch.float32  # both runs: bf16 autocast on CUDA (Keel's loop, the Trainer's bf16=True)
    with tempfile.TemporaryDirectory(prefix="keel-throughput-") as tmp:
        out = Path(tmp)
        if args.untrained_testbed:
            args.model = untrained_testbed(out / "model", args.seed)
        elif not args.model:
            from testbed import build_testbed

            args.model = str(build_testbed(seed=args.seed).base)
        _, tok = load_model(args.model, device="cpu")
        rows = chat_rows(args.seed, 4 * args.steps * args.batch_size)
        kept = [r for r in rows if any(x != -100 for x in encode_example(tok, r, args.max_len)["labels"][1:])]
        rows, held_rows = kept[: args.steps * args.batch_size], kept[-64:]
        held = [encode_example(tok, r, args.max_len) for r in held_rows]
        lengths = [len(encode_example(tok, r, args.max_len)["input_ids"]) for r in rows]
        layout = resolve_layout(args.layout, device)
        widths = [max(lengths[i] for i in b) * len(b) for b in _epoch_batches(lengths, args.batch_size, args.seed, 0)]
        pad_a = 0.0 if layout == "packed" else 1 - sum(lengths) / sum(widths)
        runs = {"a": run_keel, "b": run_trainer}
        if args.warmup_steps:  # one-time costs (lazy imports, allocator arenas, kernels) out of both measurements
            warm = argparse.Namespace(**{**vars(args), "steps": args.warmup_steps})
            for k in args.order:
                runs[k](warm, rows[: args.warmup_steps * args.batch_size], held[:8], device, dtype, out / f"warm-{k}")
        results = {k: runs[k](args, rows, held, device, dtype, out) for k in args.order}
    a, b = results["a"], results["b"]
    k = args.log_every
    report = {
        "model": args.model,
        "device": device,
        "threads": torch.get_num_threads(),
        "layout": layout,
        "baseline_order": args.baseline_order,
        "steps": a["steps"],
        "batch_size": args.batch_size,
        "examples": len(rows),
        "real_tokens": a["tokens"],
        "padding_fraction_a": round(pad_a, 3),
        "padding_fraction_b": round(1 - b["tokens"] / b["padded_tokens"], 3),
        "a_keel": {
            "tokens_per_s": round(a["tokens"] / a["wall_s"], 1),
            "wall_s": round(a["wall_s"], 2),
            **{m: a[m] for m in a if m.startswith("peak")},
            "train_loss_last": round(sum(a["losses"][-k:]) / len(a["losses"][-k:]), 4),
            "eval_loss": round(a["eval_loss"], 4),
        },
        "b_trainer": {
            "tokens_per_s": round(b["tokens"] / b["wall_s"], 1),
            "wall_s": round(b["wall_s"], 2),
            **{m: b[m] for m in b if m.startswith("peak")},
            "train_loss_last": round(b["window_losses"][-1], 4) if b["window_losses"] else float("nan"),
            "eval_loss": round(b["eval_loss"], 4),
        },
    }
    report["speedup"] = round(b["wall_s"] / a["wall_s"], 2)
    report["same_tokens"] = a["tokens"] == b["tokens"] and a["steps"] == b["steps"]
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(_table(report))
    return report


def _table(r: dict) -> str:
    rows = [("", "(a) Keel", "(b) Trainer")]
    for key, label in (
        ("tokens_per_s", "real tokens/s"),
        ("wall_s", "wall s"),
        ("peak_rss_mib", "peak RSS MiB (above start)"),
        ("peak_cuda_mib", "peak CUDA MiB"),
        ("train_loss_last", "train loss (last window)"),
        ("eval_loss", "held-out loss"),
    ):
        if key in r["a_keel"]:
            rows.append((label, str(r["a_keel"][key]), str(r["b_trainer"][key])))
    w = [max(len(x[i]) for x in rows) for i in range(3)]
    lines = [f"{x[0]:<{w[0]}}  {x[1]:>{w[1]}}  {x[2]:>{w[2]}}" for x in rows]
    head = (
        f"{r['model']} on {r['device']} ({r['threads']} threads), {r['steps']} steps x {r['batch_size']}, "
        f"{r['real_tokens']} real tokens\n(a) layout {r['layout']}, pads {r['padding_fraction_a']:.1%}; "
        f"(b) order {r['baseline_order']}, pads {r['padding_fraction_b']:.1%}"
    )
    return "\n".join([head, *lines, f"speed-up (a) over (b): {r['speedup']}x   same steps/tokens: {r['same_tokens']}"])


if __name__ == "__main__":
    main(sys.argv[1:])
