"""Client half of the compose end-to-end check (.ci/compose-e2e): the official `openai` client against a
running compose stack, as a customer and an operator would use it. Not a pytest module.

Each subcommand is one phase; state (keys, ids, digests) is kept in a JSON file between phases, because
the shell script stops and restarts containers in between:

  mint         admin key (the compose secret) -> a tenant and its API key, granted `realign: "none"`
  job1         upload a testbed dataset, create a job with safety realignment `auto`, stream its events
               until it ends, download the realigned adapter and the safety report
  job2-start   create a longer job (no realignment) and return once it is training past a checkpoint
  job2-finish  after the worker was stopped (SIGTERM) and started again: the job was handed back, resumed
               from its checkpoint on a later attempt and succeeded exactly once
  verify       after `compose down` + `up`: both jobs, the uploaded file and the adapters are still there,
               byte for byte

  python deploy/e2e_client.py --base-url http://127.0.0.1:PORT/v1 --state state.json PHASE [...]
Exit status 0 when the phase's checks hold; any failed check raises with a message saying what was seen.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import openai

TERMINAL = {"succeeded", "failed", "cancelled"}
# job1's training seed, fixed so its realignment outcome is the same on every run of this hardware. This e2e checks
# the production path, not the realignment's success rate: over seeds 0-15 (an idle 2-core machine, embedded
# service) the testbed's `sn-repair` rungs released this job at HS 6.0-10.7 against its target of 11.0 in 14 runs
# and missed it in 2 (11.3 and 12.0 after the last rung), and one CI run with the server's per-request seed
# (derived from the request, whose file ids are random) failed at 11.33. Seed 2 passes at `sn-repair(all, 2
# epochs)` with HS 6.7, here and in the compose stack alike.
JOB1_SEED = 2


class Check(Exception):
    """A promise of the stack that did not hold."""


def expect(cond: bool, what: str) -> None:
    if not cond:
        raise Check(what)


def say(msg: str) -> None:
    print(f"[e2e {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Run:
    """The state file plus clients built from it."""

    def __init__(self, base_url: str, state_path: Path, work: Path) -> None:
        self.base_url = base_url.rstrip("/")
        self.path = state_path
        self.work = work
        self.state: dict[str, Any] = json.loads(state_path.read_text()) if state_path.exists() else {}

    def save(self) -> None:
        self.path.write_text(json.dumps(self.state, indent=2))

    def client(self, key: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url, api_key=key or self.state["tenant_key"], max_retries=3)

    def get(self, path: str, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.state['tenant_key']}"}
        r = httpx.get(f"{self.base_url}{path}", headers=headers, params=params, timeout=60)
        expect(r.status_code == 200, f"GET {path}: {r.status_code} {r.text[:300]}")
        return r


def mint(run: Run, admin_key_file: Path) -> None:
    admin = run.client(admin_key_file.read_text().strip())
    tenant = admin.post("/admin/tenants", body={"name": "compose-e2e"}, cast_to=httpx.Response).json()
    expect(tenant["api_key"].startswith("sk-"), f"no tenant key in {tenant}")
    run.state.update(tenant_id=tenant["id"], tenant_key=tenant["api_key"])
    # job2 trains without realignment, which a tenant may ask for only with the operator's grant (issue 19).
    policy = admin.post(
        f"/admin/tenants/{tenant['id']}/safety_policy", body={"allow_unrealigned": True}, cast_to=httpx.Response
    ).json()
    expect(policy.get("allow_unrealigned") is True, f"safety policy not granted: {policy}")
    models = [m.id for m in run.client().models.list().data]
    expect("keel-testbed" in models, f"keel-testbed not registered; models: {models}")
    say(f"tenant {tenant['id']} minted; base models {models}")


def dataset(run: Run, n: int, name: str) -> tuple[Path, Path]:
    train, val = run.work / f"{name}-train.jsonl", run.work / f"{name}-validation.jsonl"
    cmd = ["keel", "testbed", "example", "--n", str(n), "--train", str(train), "--validation", str(val)]
    subprocess.run([str(Path(sys.executable).parent / cmd[0]), *cmd[1:]], check=True, capture_output=True)
    return train, val


def upload(run: Run, path: Path) -> str:
    f = run.client().files.create(file=path.open("rb"), purpose="fine-tune")
    expect(f.status == "processed", f"upload {path.name}: status {f.status}")
    run.state.setdefault("files", {})[f.id] = hashlib.sha256(path.read_bytes()).hexdigest()
    return f.id


def create_job(run: Run, n: int, epochs: int, realign: str, name: str, seed: int) -> str:
    train, val = dataset(run, n, name)
    hp = {"n_epochs": epochs, "batch_size": 8, "learning_rate_multiplier": 10}
    method: Any = {"type": "supervised", "supervised": {"hyperparameters": hp}}
    job = run.client().fine_tuning.jobs.create(
        model="keel-testbed",
        training_file=upload(run, train),
        validation_file=upload(run, val),
        suffix=name,
        seed=seed,
        method=method,
        extra_body={"safety": {"realign": realign}},
    )
    say(f"{name}: job {job.id} {job.status} ({n} rows, {epochs} epochs, realign {realign})")
    return job.id


def stream_events(run: Run, job_id: str, timeout_s: float) -> list[str]:
    """Follow the SSE stream until `event: done` (the job ended); returns the event messages in order."""
    url = f"{run.base_url}/fine_tuning/jobs/{job_id}/events"
    headers = {"Authorization": f"Bearer {run.state['tenant_key']}"}
    messages: list[str] = []
    deadline = time.monotonic() + timeout_s
    with httpx.stream("GET", url, params={"stream": "true"}, headers=headers, timeout=60) as r:
        expect(r.status_code == 200, f"event stream: {r.status_code}")
        for line in r.iter_lines():
            expect(time.monotonic() < deadline, f"job {job_id} not finished after {timeout_s:.0f} s")
            if line.startswith("event: done"):
                return messages
            if line.startswith("data:"):
                data = json.loads(line[5:])
                messages.append(data.get("message", ""))
                say(f"  event: {data.get('message', '')[:150]}")
    raise Check(f"event stream of {job_id} ended without `event: done`")


def download_adapter(run: Run, job_id: str) -> str:
    job = run.client().fine_tuning.jobs.retrieve(job_id)
    expect(job.status == "succeeded" and len(job.result_files) == 1, f"{job_id}: {job.status} {job.result_files}")
    blob = run.client().files.content(job.result_files[0]).read()
    via_route = run.get(f"/fine_tuning/jobs/{job_id}/adapter").content
    expect(blob == via_route and blob[:2] == b"PK", f"{job_id}: adapter zip differs between routes or is no zip")
    return hashlib.sha256(blob).hexdigest()


def job1(run: Run, timeout_s: float) -> None:
    job_id = create_job(run, 120, 2, "auto", "e2e1", JOB1_SEED)
    messages = stream_events(run, job_id, timeout_s)
    expect(any("successfully completed" in m for m in messages), f"job1 did not succeed: {messages[-3:]}")
    digest = download_adapter(run, job_id)
    report = run.get(f"/fine_tuning/jobs/{job_id}/safety_report").json()
    (run.work / "safety_report.json").write_text(json.dumps(report, indent=2))
    png = run.get(f"/fine_tuning/jobs/{job_id}/safety_report", format="png").content
    expect(png[:4] == b"\x89PNG", "safety report PNG is no PNG")
    run.state["job1"] = {"id": job_id, "adapter_sha256": digest}
    say(f"job1 {job_id}: adapter sha256 {digest[:16]}, report keys {sorted(report)[:8]}")


def job2_start(run: Run, timeout_s: float) -> None:
    job_id = create_job(run, 400, 4, "none", "e2e2", 0)
    run.state["job2"] = {"id": job_id}
    run.save()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = run.client().fine_tuning.jobs.retrieve(job_id)
        expect(job.status not in TERMINAL, f"job2 ended before the worker was stopped: {job.status}")
        steps = [c.step_number for c in run.client().fine_tuning.jobs.checkpoints.list(job_id).data]
        if steps and job.status == "running":
            run.state["job2"]["checkpoint_before_stop"] = max(steps)
            say(f"job2 {job_id}: running, checkpoints at steps {sorted(steps)}: stop the worker now")
            return
        time.sleep(1)
    raise Check(f"job2 wrote no checkpoint within {timeout_s:.0f} s")


def job2_finish(run: Run, timeout_s: float) -> None:
    job_id = run.state["job2"]["id"]
    messages = stream_events(run, job_id, timeout_s)
    handed_back = [m for m in messages if "shutting down; job requeued" in m]
    expect(len(handed_back) == 1, f"expected one warm-shutdown hand-back, saw {handed_back}")
    starts = [m for m in messages if "started the job (attempt" in m]
    expect(len(starts) == 2 and "attempt 2" in starts[1], f"expected attempts 1 and 2: {starts}")
    resumed = [m for m in messages if "resumed from step" in m]
    expect(len(resumed) == 1, f"training did not resume from a checkpoint: {messages[-5:]}")
    step = int(resumed[0].split("resumed from step ")[1].split(")")[0])
    expect(step >= run.state["job2"]["checkpoint_before_stop"], f"resumed from step {step}, before the checkpoint")
    done = [m for m in messages if "successfully completed" in m]
    expect(len(done) == 1, f"expected exactly one success event, saw {len(done)}")
    job = run.client().fine_tuning.jobs.retrieve(job_id)
    extra = job.model_extra or {}
    expect(extra.get("attempt") == 2, f"job2 attempt is {extra.get('attempt')}, expected 2")
    run.state["job2"].update(adapter_sha256=download_adapter(run, job_id), resumed_from_step=step)
    say(f"job2 {job_id}: handed back once, resumed from step {step} on attempt 2, succeeded once")


def verify(run: Run) -> None:
    client = run.client()
    for name in ("job1", "job2"):
        rec = run.state[name]
        expect(download_adapter(run, rec["id"]) == rec["adapter_sha256"], f"{name}: adapter changed after down/up")
    for file_id, digest in run.state["files"].items():
        blob = client.files.content(file_id).read()
        expect(hashlib.sha256(blob).hexdigest() == digest, f"file {file_id} changed after down/up")
    say(
        f"after down/up: jobs {run.state['job1']['id']}, {run.state['job2']['id']} succeeded, adapters and "
        f"{len(run.state['files'])} files identical"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base-url", required=True)
    p.add_argument("--state", type=Path, required=True)
    p.add_argument("--admin-key-file", type=Path)
    p.add_argument("--timeout", type=float, default=600.0, help="seconds for the phase's longest wait")
    p.add_argument("phase", choices=["mint", "job1", "job2-start", "job2-finish", "verify"])
    args = p.parse_args(argv)
    run = Run(args.base_url, args.state, args.state.parent)
    try:
        if args.phase == "mint":
            expect(args.admin_key_file is not None, "mint needs --admin-key-file")
            mint(run, args.admin_key_file)
        elif args.phase == "job1":
            job1(run, args.timeout)
        elif args.phase == "job2-start":
            job2_start(run, args.timeout)
        elif args.phase == "job2-finish":
            job2_finish(run, args.timeout)
        else:
            verify(run)
    except (Check, openai.OpenAIError, httpx.HTTPError) as exc:
        print(f"[e2e] FAILED in {args.phase}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        run.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
