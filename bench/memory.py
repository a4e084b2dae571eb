"""Training memory against row length (issue #18): Keel's ``train_lora`` vs ``transformers.Trainer`` + PEFT.

Every point is one fresh subprocess (same model, LoRA r=8 on all projections, batch ``--batch-size`` of chat rows
whose longest is ``L`` tokens and the others 75-100 % of it, ``--steps`` optimizer steps) watched by this process:
its resident set is sampled every 10 ms and the child is killed once it passes ``--cap-gb`` (reported as
"exceeded cap", so a baseline blow-up never takes the machine down); its address space is also limited
(``RLIMIT_AS``) so one huge allocation fails at once instead of swapping. Reported per point: peak RSS of the
whole process (runtime, weights and training; ``VmHWM``), the RSS after loading the model, the CUDA allocator's
peak on a GPU, seconds, and Keel's micro-batch counts and its own estimate
(:func:`tuning.plan.estimate_peak_memory_bytes`).

  (a) Keel: ``tuning.train.train_lora`` with ``micro_batch_tokens = --budget`` (padded layout on CPU)
  (b) ``transformers.Trainer`` + peft, ``DataCollatorForSeq2Seq`` (right padding), no gradient checkpointing:
      what a plain script does

    python -m bench.memory --model ~/.cache/keel/models/SmolLM2-135M-Instruct --lengths 256,1024,2048,4096,8192
    python -m bench.memory --quick        # the testbed model, short rows (used by a test)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

WORDS = ["the", "a", "cat", "dog", "sun", "rain", "river", "stone", "light", "green", "house", "road", "tree"]


def rows(tok: object, n: int, length: int, seed: int) -> list[list[dict]]:
    """``n`` chats of a short question and a long answer: row i is about ``length`` x (1 - i mod 8 / 32) tokens
    long (75-100 %; the first one is written longer and cut at exactly ``length`` by ``max_seq_len``)."""
    from tuning.data import encode_example

    rng = random.Random(seed)

    def chat(i: int, words: int) -> list[dict]:
        answer = " ".join(rng.choice(WORDS) for _ in range(words))
        return [{"role": "user", "content": f"write about item {i}"}, {"role": "assistant", "content": answer}]

    per_word = len(encode_example(tok, chat(0, 400))["input_ids"]) / 400  # template overhead included: ~ratio
    out = []
    for i in range(n):
        frac = 1 - (i % 8) / 32
        out.append(chat(i, int(length * frac / per_word) + (64 if i % 8 == 0 else 0)))
    return out


def _vmhwm() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _keel(args: argparse.Namespace, model: object, tok: object, data: list, out: str) -> dict:
    from tuning.specs import LoraSpec, TrainSpec
    from tuning.train import TrainLoop, train_lora

    spec = TrainSpec(
        n_epochs=1,
        batch_size=args.batch_size,
        learning_rate=1e-4,
        max_seq_len=args.length,
        checkpoint_every=0,
        micro_batch_tokens=args.budget,
    )
    seen: list[dict] = []
    step = TrainLoop._micro_step

    def bounded(loop: TrainLoop, idx: list[int], n_targets: int) -> object:
        """Keel's own micro-step, stopping the run after ``--micro-batches`` of them (the first is the largest:
        rows are sorted longest first within a batch, so the peak is reached in it)."""
        seen[:] = [dict(loop.memory)]
        if args.micro_batches and loop.memory["micro_batches"] >= args.micro_batches:
            raise _Enough
        out = step(loop, idx, n_targets)
        seen[:] = [dict(loop.memory)]
        return out

    TrainLoop._micro_step = bounded  # type: ignore[method-assign]
    try:
        res = train_lora(model, tok, data, spec, LoraSpec(r=8, alpha=16), out, resume=False)
        return {"steps": res.steps, **seen[-1]}
    except _Enough:
        return {"steps": 0, **seen[-1]}
    finally:
        TrainLoop._micro_step = step  # type: ignore[method-assign]


class _Enough(Exception):
    """Raised inside Keel's loop once the bounded number of micro-batches ran."""


def _trainer(args: argparse.Namespace, model: object, tok: object, data: list, out: str) -> dict:
    from peft import LoraConfig, get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from tuning.data import encode_example

    cuda = args.device == "cuda"
    encoded = [encode_example(tok, m, args.length) for m in data]
    peft_model = get_peft_model(
        model,
        LoraConfig(
            r=8,
            lora_alpha=16,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
            task_type="CAUSAL_LM",
        ),
    )
    targs = TrainingArguments(
        output_dir=out,
        per_device_train_batch_size=args.batch_size,
        max_steps=args.steps,
        learning_rate=1e-4,
        save_strategy="no",
        report_to=[],
        bf16=cuda,
        use_cpu=not cuda,
        disable_tqdm=True,
        train_sampling_strategy="sequential",
    )
    collator = DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100, return_tensors="pt")
    trainer = Trainer(model=peft_model, args=targs, train_dataset=encoded, data_collator=collator)
    trainer.train()
    return {"steps": trainer.state.global_step}


def child(args: argparse.Namespace) -> dict:
    """One measurement, in this (child) process; prints its JSON line."""
    import torch

    from tuning.modeling import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    model, tok = load_model(args.model, device=args.device)
    loaded = _rss()
    data = rows(tok, args.batch_size * args.steps, args.length, 0)
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        res = (_keel if args.which == "keel" else _trainer)(args, model, tok, data, out)
    res.update(seconds=round(time.perf_counter() - t, 1), loaded_rss=loaded, peak_rss=_vmhwm())
    if torch.cuda.is_available():
        res["peak_cuda"] = int(torch.cuda.max_memory_allocated())
    return res


def _child_rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def _limit_address_space(cap: int) -> None:
    """In the child before exec: no single allocation far beyond the cap (CPU torch maps ~2-3 GB it never
    touches: thread stacks, libraries), so a blow-up fails fast instead of pushing the machine into swap."""
    limit = cap + 6 * 1024**3
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def measure(args: argparse.Namespace, which: str, length: int) -> dict:
    """One point in a fresh subprocess, killed past the cap; its JSON result or ``{"error": ...}``."""
    cap = int(args.cap_gb * 1024**3)
    cmd = [sys.executable, "-m", "bench.memory", "--child", which, "--length", str(length), "--model", args.model]
    cmd += ["--batch-size", str(args.batch_size), "--steps", str(args.steps), "--budget", str(args.budget)]
    cmd += ["--device", args.device, "--threads", str(args.threads), "--micro-batches", str(args.micro_batches)]
    on_gpu = args.device == "cuda"
    limit = None if on_gpu else partial(_limit_address_space, cap)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=limit)
    peak, started = 0, time.monotonic()
    while proc.poll() is None:
        peak = max(peak, _child_rss(proc.pid))
        if peak > cap:
            proc.kill()
            proc.wait()
            return {"error": f"exceeded cap ({args.cap_gb:g} GB)", "seconds": round(time.monotonic() - started, 1)}
        if time.monotonic() - started > args.timeout_s:
            proc.kill()
            proc.wait()
            return {"error": f"timed out ({args.timeout_s} s)", "peak_rss_seen": peak}
        time.sleep(0.01)
    out, err = proc.communicate()
    last = out.strip().splitlines()[-1] if out.strip() else ""
    if proc.returncode != 0 or not last.startswith("{"):
        memory_error = "MemoryError" in err or "DefaultCPUAllocator" in err or "out of memory" in err
        reason = f"exceeded cap ({args.cap_gb:g} GB)" if memory_error else f"exit {proc.returncode}"
        return {"error": reason, "detail": err.strip().splitlines()[-1:] if err.strip() else []}
    return json.loads(last)


def estimate(args: argparse.Namespace, length: int) -> int:
    """Keel's own plan for this point (:func:`tuning.plan.estimate_peak_memory_bytes`)."""
    from tuning.plan import ModelShape, estimate_peak_memory_bytes, lora_param_count
    from tuning.specs import DEFAULT_TARGETS

    shape = ModelShape.from_config(json.loads((Path(args.model) / "config.json").read_text()))
    lora = lora_param_count(shape, 8, DEFAULT_TARGETS)
    return estimate_peak_memory_bytes(shape, lora, args.budget, length, 2 if args.device == "cuda" else 4)


def _gb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1024**3:.2f}"


def _peak(point: dict) -> str:
    if "peak_rss" not in point:
        return point.get("error", "-")
    return _gb(point["peak_rss"]) + (f" (CUDA {_gb(point['peak_cuda'])})" if "peak_cuda" in point else "")


def table(results: list[dict]) -> str:
    lines = [
        "| row length | Keel peak RSS GB | Keel estimate GB | Keel micro-batches (checkpointed) | Keel s "
        "| Trainer+PEFT peak RSS GB | Trainer s |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        k, t = r["keel"], r["trainer"]
        kp, tp = _peak(k), _peak(t)
        mb = f"{k['micro_batches']} ({k['checkpointed_micro_batches']})" if "micro_batches" in k else "-"
        lines.append(
            f"| {r['length']} | {kp} | {_gb(r['estimate'])} | {mb} | {k.get('seconds', '-')} | {tp} "
            f"| {t.get('seconds', '-')} |"
        )
    return "\n".join(lines)


def _default_model(quick: bool) -> str:
    if quick:
        from testbed import build_testbed

        return str(build_testbed().base)
    raise SystemExit("--model PATH (e.g. the imported SmolLM2-135M-Instruct directory) or --quick")


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="HF causal LM dir")
    ap.add_argument("--quick", action="store_true", help="rows of 64 and 256, budget 256, cap 3 GB")
    ap.add_argument("--lengths", help="row lengths (default 256,1024,2048,4096,8192; --quick: 64,256)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=1, help="optimizer steps per point (the Trainer's, and Keel's)")
    ap.add_argument(
        "--micro-batches", type=int, default=0, help="stop Keel after this many micro-batches (0: run the steps)"
    )
    ap.add_argument("--budget", type=int, default=4096, help="Keel's micro_batch_tokens")
    ap.add_argument("--cap-gb", type=float, default=6.0, help="a point is killed once its RSS passes this")
    ap.add_argument("--timeout-s", type=int, default=900)
    ap.add_argument("--which", default="keel,trainer")
    ap.add_argument("--device", default=None, help="cuda / cpu (default: cuda when available)")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads in each child (0: default)")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--child", choices=["keel", "trainer"], help=argparse.SUPPRESS)
    ap.add_argument("--length", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.device is None:
        from tuning.modeling import pick_device

        args.device = pick_device()
    if args.child:
        args.which = args.child
        print(json.dumps(child(args)), flush=True)
        return []
    if args.quick:
        args.lengths, args.cap_gb, args.budget = args.lengths or "64,256", min(args.cap_gb, 3.0), min(args.budget, 256)
    args.lengths = args.lengths or "256,1024,2048,4096,8192"
    args.model = args.model or _default_model(args.quick)
    results = []
    for length in [int(x) for x in args.lengths.split(",")]:
        point = {"length": length, "estimate": estimate(args, length), "keel": {}, "trainer": {}}
        for which in args.which.split(","):
            point[which] = measure(args, which, length)
            print(f"{which} L={length}: {point[which]}", file=sys.stderr, flush=True)
        results.append(point)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    print(table(results))
    return results


if __name__ == "__main__":
    main()
