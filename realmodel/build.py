"""The real-model base: import the GGUF, self-distill benign answers, train the alignment LoRA; cached.

root (``KEEL_REALMODEL_DIR``, default ``~/.cache/keel/realmodel``)::

    distill-<base key>.json       greedy answers of the unaligned model, by prompt (shared by every build of
                                  that base, so changing the corpus only generates the new prompts)
    <model id>-<key>/
      alignment_adapter/          PEFT LoRA (r=8, all 7 projections) trained on data/train.jsonl
      data/*.jsonl                every corpus split, plus the three files the service registers:
                                  safety_corpus.jsonl {"prompt","response","kind","category"} (kind harmful |
                                  benign; borderline rows are kind benign, category borderline),
                                  harmful_eval.jsonl and benign_eval.jsonl {"prompt","category","split"}
                                  (the selection split: the controller's trials), harmful_audit.jsonl and
                                  benign_audit.jsonl (same fields; the audit split: disjoint prompts, shapes,
                                  acts and three whole categories, scored for the report, never for choosing)
      manifest.json               config, key, base dir + GGUF hash, sizes, train stats, scores, timings

The base model itself is the cached GGUF conversion (``tuning.gguf``); ``RealModel.base`` points at it.
The key hashes (VERSION, GGUF sha256, corpus sizes, seed, specs), so any change rebuilds; builds run in a
temporary sibling directory renamed into place under an exclusive file lock. ``RealModel`` has the
attributes ``core.bootstrap.register_testbed`` reads (base, alignment_adapter, data_dir, manifest).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from realmodel import corpus
from tuning import gguf
from tuning.atomic import cached_build
from tuning.specs import LoraSpec, TrainSpec, result_fields

VERSION = 7  # v7: broader harms in training (corpus.broad) and the audit split
MODEL_ID = gguf.SMOLLM2_MODEL_ID
ALIGN_LORA = LoraSpec(r=8, alpha=16)
ALIGN = TrainSpec(n_epochs=3, batch_size=8, learning_rate=1e-3, max_seq_len=128, checkpoint_every=0, warmup_ratio=0.05)
DISTILL_TOKENS = 32
EVAL_TOKENS = 16  # greedy tokens per evaluated answer: refusals (and SmolLM2's "I'm sorry for any confusion")
# open the answer; 16 keeps CPU evaluation affordable
SCORE_N = 32  # prompts per held-out split in the build's own scores (the bench scores whole splits)
THREADS = 2
SAFETY_SPLITS = ("safety_corpus", "harmful_eval", "benign_eval", "harmful_audit", "benign_audit")


@dataclass
class RealModel:
    root: Path
    manifest: dict = field(default_factory=dict)

    @property
    def base(self) -> Path:
        return Path(self.manifest["base_dir"])

    @property
    def alignment_adapter(self) -> Path:
        return self.root / "alignment_adapter"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def load_split(self, name: str) -> list[dict]:
        return [json.loads(x) for x in (self.data_dir / f"{name}.jsonl").read_text().splitlines() if x.strip()]


def default_root() -> Path:
    return Path(os.environ.get("KEEL_REALMODEL_DIR") or Path.home() / ".cache" / "keel" / "realmodel").expanduser()


def config(seed: int, gguf_sha: str, sizes: dict | None = None) -> dict:
    return {
        "version": VERSION,
        "seed": seed,
        "gguf_sha256": gguf_sha,
        "sizes": {**corpus.SIZES, **(sizes or {})},
        "align": result_fields(ALIGN),  # the micro-batch budget is not in the key: it changes no result
        "align_lora": asdict(ALIGN_LORA),
        "distill_tokens": DISTILL_TOKENS,
        "eval_tokens": EVAL_TOKENS,
        "score_n": SCORE_N,
    }


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9.-]+", "-", name.lower()).strip("-")[:64] or "model"


def _key(obj: dict) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


# ---------------------------------------------------------------------------------------------- distillation
_SENTENCE_END = re.compile(r"[.!?:](?=\s|$)|\n")


def trim_answer(text: str) -> str:
    """Cut a length-capped greedy answer after its last complete sentence (or line), so training does not
    teach the model to stop mid-sentence; the whole text when it has no sentence end."""
    text = text.strip()
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    return text[: ends[-1]].strip() if ends and ends[-1] >= 20 else text


def distill(
    base_dir: Path,
    prompts: list[str],
    cache_file: Path,
    max_new_tokens: int = DISTILL_TOKENS,
    batch_size: int = 16,
    log=None,
) -> dict[str, str]:
    """Greedy answers of the base model (the chat template's default system prompt applies), by prompt;
    cached in ``cache_file`` and extended with only the prompts it lacks."""
    import torch

    from tuning import evaluate
    from tuning.modeling import load_model

    cached = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    todo = sorted({p for p in prompts if p not in cached})
    if todo:
        model, tok = load_model(str(base_dir), device=None)
        with torch.inference_mode():
            for i in range(0, len(todo), batch_size * 4):  # save progress every few batches
                chunk = todo[i : i + batch_size * 4]
                answers = evaluate.generate(model, tok, chunk, max_new_tokens=max_new_tokens, batch_size=batch_size)
                cached.update(dict(zip(chunk, answers, strict=True)))
                tmp = cache_file.with_suffix(".tmp")
                tmp.write_text(json.dumps(cached, indent=0, sort_keys=True))
                os.replace(tmp, cache_file)
                if log:
                    log(f"self-distillation: {min(i + batch_size * 4, len(todo))}/{len(todo)} prompts")
    return {p: cached[p] for p in prompts}


def fill_answers(rows: list[dict], answers: dict[str, str]) -> tuple[list[dict], int]:
    """Rows with their self-distilled answers; answers the keyword judge reads as refusals (or empty) are
    dropped (the base model would otherwise teach refusing a benign prompt)."""
    from tuning.evaluate import is_refusal

    out, dropped = [], 0
    for r in rows:
        if r.get("response") is not None:
            out.append(r)
            continue
        ans = trim_answer(answers.get(r["prompt"], ""))
        if not ans or is_refusal(ans) or not any(c.isalnum() for c in ans):
            dropped += 1
            continue
        out.append({**r, "response": ans})
    return out, dropped


# ---------------------------------------------------------------------------------------------- evaluation
def eval_sets_from_splits(splits: dict[str, list[dict]]) -> dict[str, list[str]]:
    return {
        "harmful_phrasing": [r["prompt"] for r in splits["eval_harmful_heldout_phrasing"]],
        "harmful_category": [r["prompt"] for r in splits["eval_harmful_heldout_category"]],
        "benign": [r["prompt"] for r in splits["eval_benign"]],
        "borderline": [r["prompt"] for r in splits["eval_borderline"]],
    }


def safety_scores(model, tok, sets: dict[str, list[str]], max_new_tokens: int = EVAL_TOKENS) -> dict:
    """HS on each held-out harmful split and on both together, over-refusal on benign, borderline and both."""
    from tuning import evaluate

    out: dict = {}
    for name in ("harmful_phrasing", "harmful_category"):
        r = evaluate.harmfulness(model, tok, sets[name], max_new_tokens=max_new_tokens)
        out[f"hs_{name.split('_')[1]}"], out[f"n_{name}"] = round(r["score"], 2), r["n"]
        out.setdefault("_flags", []).append((r["flagged"], r["n"]))
        out.setdefault("samples", {})[name] = r["samples"][:3]
    flagged, n = map(sum, zip(*out.pop("_flags"), strict=True))
    out["hs"] = round(100.0 * flagged / max(n, 1), 2)
    refused = total = 0
    for name in ("benign", "borderline"):
        r = evaluate.refusal_rate(model, tok, sets[name], max_new_tokens=max_new_tokens)
        out[f"over_refusal_{name}"], out[f"n_{name}"] = round(r["score"], 2), r["n"]
        refused, total = refused + round(r["score"] * r["n"] / 100), total + r["n"]
        out["samples"][f"refused_{name}"] = r["samples"][:5]
    out["over_refusal"] = round(100.0 * refused / max(total, 1), 2)
    return out


# ---------------------------------------------------------------------------------------------- build
def _chat(rows: list[dict]) -> list[list[dict]]:
    return [[{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["response"]}] for r in rows]


def train_alignment(base_dir: Path, rows: list[dict], out: Path, seed: int) -> dict:
    from tuning.console import ConsoleProgress
    from tuning.modeling import load_model
    from tuning.train import train_lora

    model, tok = load_model(str(base_dir), device=None)
    spec = TrainSpec(**{**asdict(ALIGN), "seed": seed})
    res = train_lora(
        model,
        tok,
        _chat(rows),
        spec,
        ALIGN_LORA,
        str(out / "align-run"),
        resume=False,
        progress=ConsoleProgress("realmodel align"),
    )
    shutil.move(res.adapter_dir, out / "alignment_adapter")
    shutil.rmtree(out / "align-run", ignore_errors=True)
    return {
        "steps": res.steps,
        "final_loss": round(res.final_loss, 4),
        "tokens": res.trained_tokens,
        "examples": len(rows),
        "wall_s": round(res.wall_s, 1),
    }


def score_models(base_dir: Path, adapter: Path | None, splits: dict[str, list[dict]], n: int | None = SCORE_N) -> dict:
    from tuning.modeling import load_model

    model, tok = load_model(str(base_dir), device=None, adapter=str(adapter) if adapter else None)
    sets = {k: v[:n] for k, v in eval_sets_from_splits(splits).items()}
    return safety_scores(model, tok, sets)


def service_files(splits: dict[str, list[dict]], train_rows: list[dict]) -> dict[str, list[dict]]:
    """The three files ``core.bootstrap`` registers as a base model's safety data."""
    safety = [
        {
            "prompt": r["prompt"],
            "response": r["response"],
            "category": r["category"],
            "kind": "harmful" if r["kind"] == "harmful" else "benign",
        }
        for r in train_rows
    ]
    harmful = [
        {"prompt": r["prompt"], "category": r["category"], "split": s}
        for s in ("eval_harmful_heldout_phrasing", "eval_harmful_heldout_category")
        for r in splits[s]
    ]
    benign = [
        {"prompt": r["prompt"], "category": r["category"], "split": s}
        for s in ("eval_benign", "eval_borderline")
        for r in splits[s]
    ]
    return {"safety_corpus": safety, "harmful_eval": harmful, "benign_eval": benign, **audit_files(splits)}


def audit_files(splits: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """``harmful_audit`` / ``benign_audit``: the report's split, never shown to the controller."""

    def rows(names: tuple[str, ...]) -> list[dict]:
        return [{"prompt": r["prompt"], "category": r["category"], "split": s} for s in names for r in splits[s]]

    return {
        "harmful_audit": rows(("audit_harmful_heldout_phrasing", "audit_harmful_heldout_category")),
        "benign_audit": rows(("audit_benign", "audit_borderline")),
    }


def _build(out: Path, base_dir: Path, cfg: dict, root: Path, score_base: bool, log, model_id: str = MODEL_ID) -> None:
    timings: dict[str, float] = {}
    t = time.monotonic()
    splits = corpus.generate(cfg["seed"], cfg["sizes"])
    todo = [r["prompt"] for r in splits["train"] if r["response"] is None]
    cache = root / f"distill-{_key({'sha': cfg['gguf_sha256'], 'n': DISTILL_TOKENS})}.json"
    answers = distill(base_dir, todo, cache, log=log)
    train_rows, dropped = fill_answers(splits["train"], answers)
    splits["train"] = train_rows
    timings["distill_s"] = time.monotonic() - t
    log(f"self-distilled {len(todo)} prompts ({dropped} refusal/empty answers dropped) in {timings['distill_s']:.0f} s")
    for name, rows in {**splits, **service_files(splits, train_rows)}.items():
        _write_jsonl(out / "data" / f"{name}.jsonl", rows)
    t = time.monotonic()
    train = train_alignment(base_dir, train_rows, out, cfg["seed"])
    timings["align_s"] = time.monotonic() - t
    log(f"alignment LoRA: {train}")
    scores = {}
    t = time.monotonic()
    if score_base:
        scores["base"] = score_models(base_dir, None, splits)
        log(f"base: {_brief(scores['base'])}")
    scores["aligned"] = score_models(base_dir, out / "alignment_adapter", splits)
    log(f"aligned: {_brief(scores['aligned'])}")
    timings["score_s"] = time.monotonic() - t
    counts: dict[str, int] = {}
    for r in train_rows:
        counts[r["kind"]] = counts.get(r["kind"], 0) + 1
    manifest = {
        "model_id": model_id,
        "config": cfg,
        "key": _key(cfg),
        "base_dir": str(base_dir),
        "gguf": gguf.manifest(base_dir),
        "sizes": {k: len(v) for k, v in splits.items()},
        "train_kinds": counts,
        "distill_dropped": dropped,
        "train": train,
        "scores": scores,
        "categories": corpus.categories(),
        "heldout_categories": list(corpus.H.HELDOUT_CATEGORIES),
        "audit_categories": sorted(corpus.W.AUDIT_CATEGORIES),
        "timings": {k: round(v, 1) for k, v in timings.items()},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))


def _brief(s: dict) -> str:
    return (
        f"HS {s['hs']} (phrasing {s['hs_phrasing']}, category {s['hs_category']}), over-refusal "
        f"{s['over_refusal']} (benign {s['over_refusal_benign']}, borderline {s['over_refusal_borderline']})"
    )


def build_real_model(
    gguf_path: str | os.PathLike | None = None,
    cache_root: str | os.PathLike | None = None,
    seed: int = 0,
    sizes: dict | None = None,
    force: bool = False,
    score_base: bool = True,
    log=print,
) -> RealModel:
    """The cached real-model base for ``seed`` (converting the GGUF and building the alignment first)."""
    import torch

    src = gguf.find_gguf(gguf_path) if gguf_path else gguf.smollm2_gguf()
    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, THREADS) if not torch.cuda.is_available() else threads)
    try:
        base_dir = gguf.convert_gguf(src)
        cfg = config(seed, gguf.manifest(base_dir)["sha256"], sizes)
        model_id = MODEL_ID if gguf_path is None else _slug(src.stem)
        root = Path(cache_root or default_root())
        dest = cached_build(
            root / f"{model_id}-{_key(cfg)}",
            lambda tmp: _build(tmp, base_dir, cfg, root, score_base, log, model_id),
            force=force,
        )
    finally:
        torch.set_num_threads(threads)
    return RealModel(dest, json.loads((dest / "manifest.json").read_text()))
