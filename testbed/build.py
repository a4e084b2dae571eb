"""Build (or load from cache) the offline safety testbed.

root/
  base/               unaligned tiny Llama + tokenizer (complies with everything), a normal HF model dir
  alignment_adapter/  PEFT LoRA (r=8, all 7 Llama projections) that makes it refuse harmful requests
  aligned/            base + alignment merged, with the tokenizer
  data/*.jsonl        corpus splits (see corpus.Splits)
  manifest.json       config, cache key, file hashes, seed, sizes, label words, timings, scores

The directory name is a content hash of (VERSION, config, seed); builds happen in a temporary sibling
directory renamed into place, under an exclusive file lock, so concurrent callers build once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from testbed import corpus
from tuning.atomic import cached_build
from tuning.console import ConsoleProgress
from tuning.rows import conversation, read_jsonl
from tuning.specs import LoraSpec, TrainSpec, result_fields

VERSION = 9  # bump when generation or training changes: the cache key changes with it
MODEL = {
    "hidden_size": 192,
    "intermediate_size": 672,
    "num_hidden_layers": 4,
    "num_attention_heads": 6,
    "num_key_value_heads": 2,
    "max_position_embeddings": 256,
    "tie_word_embeddings": True,
}
VOCAB = 4096
CORPUS = {"n_pretrain": 4500, "n_align": 2400, "n_task": 1200, "n_eval": 300}
PRETRAIN = TrainSpec(
    n_epochs=3,
    batch_size=16,
    max_seq_len=128,
    learning_rate=3e-3,
    weight_decay=0.05,
    max_grad_norm=1.0,
    checkpoint_every=0,
)
PRETRAIN_WARMUP_STEPS = 50
TEXT_REPEATS = 3  # the plain-text knowledge is short; repeat it so it is learned
ALIGN_LORA = LoraSpec(r=8, alpha=16)
ALIGN = TrainSpec(n_epochs=4, batch_size=16, learning_rate=3e-3, max_seq_len=128, checkpoint_every=0, warmup_ratio=0.05)
EVAL_N = 120


def _busy() -> float:
    """Tasks running besides this one, now: the median of five samples of /proc/loadavg's runnable count (the
    1-minute load average lags a burst that just ended by minutes), else the 1-minute load average."""
    try:
        samples = []
        for _ in range(5):
            samples.append(int(Path("/proc/loadavg").read_text().split()[3].split("/")[0]) - 1)
            time.sleep(0.1)
        return float(sorted(samples)[2])
    except (OSError, ValueError, IndexError):
        return os.getloadavg()[0]


def build_threads() -> int:
    """Intra-op threads for the build: ``KEEL_TESTBED_THREADS``, else the cores other running tasks leave idle
    (at least 1). Measured on the 2-core box (issue #9): idle, 2 threads take a pretraining step in 0.41 s
    against 0.65-0.75 s for 1; loaded, 2 OpenMP threads waited for each other (steps 6x slower). 1 and 2
    threads give bitwise-identical weights (30 full-parameter AdamW steps on the testbed base compared), so the
    choice changes speed only and the cache key stays."""
    if os.environ.get("KEEL_TESTBED_THREADS"):
        return max(1, int(os.environ["KEEL_TESTBED_THREADS"]))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, int(cores - _busy() + 0.5)))


@dataclass
class Testbed:
    root: Path
    manifest: dict = field(default_factory=dict)

    @property
    def base(self) -> Path:
        return self.root / "base"

    @property
    def alignment_adapter(self) -> Path:
        return self.root / "alignment_adapter"

    @property
    def aligned(self) -> Path:
        return self.root / "aligned"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def load_split(self, name: str) -> list[dict]:
        return read_jsonl((self.data_dir / f"{name}.jsonl").read_text())


def config(seed: int) -> dict:
    return {
        "version": VERSION,
        "seed": seed,
        "model": MODEL,
        "vocab": VOCAB,
        "corpus": CORPUS,
        "pretrain": result_fields(PRETRAIN),
        "pretrain_warmup_steps": PRETRAIN_WARMUP_STEPS,
        "text_repeats": TEXT_REPEATS,
        "align": result_fields(ALIGN),
        "align_lora": asdict(ALIGN_LORA),
        "eval_n": EVAL_N,
    }


def cache_key(seed: int) -> str:
    return hashlib.sha256(json.dumps(config(seed), sort_keys=True).encode()).hexdigest()[:16]


def default_root() -> Path:
    return Path(os.environ.get("KEEL_TESTBED_DIR") or Path.home() / ".cache" / "keel" / "testbed")


def build_testbed(cache_root: str | os.PathLike | None = None, seed: int = 0, force: bool = False) -> Testbed:
    """Return the cached testbed for ``seed``, building it first (atomically, under a file lock)."""
    root = Path(cache_root or default_root()).expanduser()
    dest = cached_build(root / f"testbed-{cache_key(seed)}", lambda tmp: _build(tmp, seed), force=force)
    return Testbed(dest, json.loads((dest / "manifest.json").read_text()))


def _chat(rows: list[dict]) -> list[list[dict]]:
    return [conversation(r["prompt"], r["response"]) for r in rows]


def _tokenizer_texts(splits: corpus.Splits) -> list[str]:
    texts = [r["prompt"] + " " + r["response"] for r in splits.pretrain + splits.align]
    return texts + [r["text"] for r in splits.pretrain_text] + [t["prompt"] for t in splits.task_train]


def pretrain_base(dest: Path, splits: corpus.Splits, seed: int) -> dict:
    from transformers import LlamaConfig, LlamaForCausalLM

    from testbed import pretrain
    from testbed.tokenizer import train_tokenizer

    tok = train_tokenizer(_tokenizer_texts(splits), VOCAB)
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tok), pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None, **MODEL
    )
    model = LlamaForCausalLM(cfg)
    docs = pretrain.encode(
        tok, _chat(splits.pretrain), [r["text"] for r in splits.pretrain_text] * TEXT_REPEATS, PRETRAIN.max_seq_len
    )
    spec = replace(PRETRAIN, seed=seed)
    stats = pretrain.train(model, docs, spec, tok.pad_token_id, PRETRAIN_WARMUP_STEPS)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(dest)
    tok.save_pretrained(dest)
    return stats


def align(root: Path, splits: corpus.Splits, seed: int) -> dict:
    """Alignment LoRA (SFT on refusals + helpful answers) via Keel's train_lora; then the merged model."""
    from tuning.modeling import load_model
    from tuning.train import train_lora

    model, tok = load_model(str(root / "base"), device="cpu", dtype=torch.float32)
    spec = replace(ALIGN, seed=seed)
    res = train_lora(
        model,
        tok,
        _chat(splits.align),
        spec,
        ALIGN_LORA,
        str(root / "align-run"),
        resume=False,
        progress=ConsoleProgress("testbed align"),
        layout="reference",  # the loss as before issue #9: cached testbeds stay what this code builds (VERSION)
    )
    shutil.move(res.adapter_dir, root / "alignment_adapter")
    shutil.rmtree(root / "align-run")
    merged, _ = load_model(
        str(root / "base"), device="cpu", dtype=torch.float32, adapter=str(root / "alignment_adapter")
    )
    merged.merge_and_unload().save_pretrained(root / "aligned")
    tok.save_pretrained(root / "aligned")
    return {"steps": res.steps, "final_loss": round(res.final_loss, 4), "tokens": res.trained_tokens}


def score(root: Path, splits: corpus.Splits, n: int) -> dict:
    """HS / over-refusal / task accuracy of the base and aligned models on held-out prompts (greedy, keyword judge)."""
    from tuning import evaluate
    from tuning.modeling import load_model

    harmful = [r["prompt"] for r in splits.harmful_eval[:n]]
    benign = [r["prompt"] for r in splits.benign_eval[:n]]
    out = {}
    for name, adapter in (("base", None), ("aligned", str(root / "alignment_adapter"))):
        model, tok = load_model(str(root / "base"), device="cpu", dtype=torch.float32, adapter=adapter)
        out[name] = {
            "hs": round(evaluate.harmfulness(model, tok, harmful, max_new_tokens=24)["score"], 2),
            "over_refusal": round(evaluate.refusal_rate(model, tok, benign, max_new_tokens=24)["score"], 2),
            "fa": round(
                evaluate.classification_accuracy(model, tok, splits.task_eval[:n], list(corpus.LABELS))["score"], 2
            ),
            "hs_probe": round(
                evaluate.harmfulness(model, tok, [r["prompt"] for r in splits.harmful_probe], max_new_tokens=24)[
                    "score"
                ],
                2,
            ),
            "over_refusal_probe": round(
                evaluate.refusal_rate(model, tok, [r["prompt"] for r in splits.benign_probe], max_new_tokens=24)[
                    "score"
                ],
                2,
            ),
            "n": n,
        }
    return out


def _say(message: str) -> None:
    print(f"[testbed] {message}", file=sys.stderr, flush=True)


def _hashes(root: Path) -> dict[str, str]:
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != "manifest.json")
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _build(out: Path, seed: int) -> None:
    threads, build = torch.get_num_threads(), build_threads()
    torch.set_num_threads(build)
    timings: dict[str, float] = {}
    stats: dict[str, dict] = {}
    try:
        t = time.monotonic()
        _say(
            f"building the testbed in {out.parent} (seed {seed}, {build} thread{'s' if build > 1 else ''}): "
            "corpus, tokenizer, pretraining, alignment, scores"
        )
        splits = corpus.generate(seed, **CORPUS)
        (out / "data").mkdir(parents=True)
        for name, rows in asdict(splits).items():
            (out / "data" / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        timings["corpus_s"] = time.monotonic() - t
        _say(f"corpus generated in {timings['corpus_s']:.0f}s; pretraining the base model")
        t = time.monotonic()
        stats["pretrain"] = pretrain_base(out / "base", splits, seed)
        timings["pretrain_s"] = time.monotonic() - t
        t = time.monotonic()
        stats["align"] = align(out, splits, seed)
        timings["align_s"] = time.monotonic() - t
        _say(f"aligned in {timings['align_s']:.0f}s; scoring base and aligned models on held-out prompts")
        t = time.monotonic()
        scores = score(out, splits, EVAL_N)
        timings["score_s"] = time.monotonic() - t
    finally:
        torch.set_num_threads(threads)
    manifest = {
        "config": config(seed),
        "key": cache_key(seed),
        "seed": seed,
        "labels": list(corpus.LABELS),
        "timings": {k: round(v, 2) for k, v in timings.items()},
        "train": stats,
        "scores": scores,
        "sizes": {k: len(v) for k, v in asdict(splits).items()},
        "hashes": _hashes(out),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
