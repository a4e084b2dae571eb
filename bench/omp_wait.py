"""OpenMP wait policy on a shared CPU host: training speed with OMP_WAIT_POLICY unset (libgomp's default: a
waiting thread spins for a while, then sleeps), ACTIVE (it spins) and PASSIVE (it sleeps at once: what Keel sets,
see tuning/__init__), alone and beside a second busy torch process (another worker on the host), in one run:

    python bench/omp_wait.py [--steps 20] [--threads 2]

Each arm is a fresh subprocess (the policy is read when torch loads libgomp) training the testbed's LoRA for
``--steps`` steps at batch 8; the competitor, started with the same policy, runs matmuls until the arm ends.
Prints wall and CPU seconds per arm and each policy's wall time over PASSIVE's."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ARM = r"""
import json, sys, tempfile, time, torch
from testbed import build_testbed
from testbed.attack import customer_dataset
from tuning.modeling import load_model
from tuning.specs import LoraSpec, TrainSpec
from tuning.train import train_lora
steps, threads = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
tb = build_testbed()
examples = [r["messages"] for r in customer_dataset(tb, 8 * steps, 0.1)]
model, tok = load_model(str(tb.base), device="cpu")
spec = TrainSpec(n_epochs=1, batch_size=8, learning_rate=2e-3, checkpoint_every=0, seed=0)
t, c = time.perf_counter(), time.process_time()
with tempfile.TemporaryDirectory() as d:
    r = train_lora(model, tok, examples, spec, LoraSpec(r=8, alpha=16), d, init_adapter=str(tb.alignment_adapter))
print(json.dumps({"steps": r.steps, "wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c}))
"""
COMPETITOR = (
    "import torch\ntorch.set_num_threads({t})\na = torch.randn(384, 384)\nwhile True:\n    a = (a @ a).tanh()\n"
)


def arm(policy: str, busy: bool, steps: int, threads: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}  # "unset": libgomp's default
    if policy != "unset":
        env["OMP_WAIT_POLICY"] = policy
    other = subprocess.Popen([sys.executable, "-c", COMPETITOR.format(t=threads)], env=env) if busy else None
    try:
        if other is not None:
            time.sleep(3)  # the competitor is computing before the arm starts
        out = subprocess.run([sys.executable, "-c", ARM, str(steps), str(threads)], env=env, capture_output=True,
                             text=True, check=True)  # fmt: skip
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        if other is not None:
            other.kill()
            other.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    rows = {}
    for busy in (False, True):
        for policy in ("PASSIVE", "unset", "ACTIVE"):
            rows[(busy, policy)] = r = arm(policy, busy, args.steps, args.threads)
            print(f"{'beside a busy process' if busy else 'alone':24} {policy:8} {r['steps']} steps  "
                  f"wall {r['wall_s']:7.1f} s  cpu {r['cpu_s']:7.1f} s", flush=True)  # fmt: skip
    for busy in (False, True):
        p = rows[(busy, "PASSIVE")]["wall_s"]
        ratios = ", ".join(f"{k} {rows[(busy, k)]['wall_s'] / p:.2f}x" for k in ("unset", "ACTIVE"))
        print(f"{'beside a busy process' if busy else 'alone'}: wall over PASSIVE's: {ratios}")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()
