"""Load against a Keel API on loopback: bounded in clients, streams, bytes and time.

Phase 1 (mixed): --clients concurrent clients for --duration seconds, each looping over GET job, list jobs
(limit=20) and a page of events; prints req/s, p50/p99 and errors.
Phase 2 (held): --streams SSE event streams open and one --upload-mb upload in flight (back to back for
--hold-s seconds) while /healthz is probed every 50 ms from a process of its own (so the load generator's own
event loop does not add to the figure); prints /healthz p50/p99/max (issue #8's bar: p99 < 100 ms), the
uploads' times and errors.

    nice -n 10 python bench/load.py                                   # starts its own embedded service
    nice -n 10 python bench/load.py --database postgres --clients 50 --duration 20
    python bench/load.py --url http://127.0.0.1:8000 --key sk-keel-... --job ftjob-...   # a running one

The load generator shares the machine's cores with the server: on a small box it competes for CPU, so read
the numbers as a floor for the server, not a ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import statistics
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class Stats:
    lat: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def ok(self, seconds: float) -> None:
        self.lat.append(seconds)

    def err(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    def pct(self, q: float) -> float:
        if not self.lat:
            return float("nan")
        s = sorted(self.lat)
        return s[min(len(s) - 1, int(q * len(s)))] * 1000

    def line(self) -> str:
        med = statistics.median(self.lat) * 1000 if self.lat else float("nan")
        mx = max(self.lat) * 1000 if self.lat else float("nan")
        return f"p50 {med:.1f} ms  p99 {self.pct(0.99):.1f} ms  max {mx:.1f} ms  errors {sum(self.errors.values())}"


async def _timed(stats: Stats, client: httpx.AsyncClient, method: str, url: str, **kw: object) -> None:
    t = time.perf_counter()
    try:
        r = await client.request(method, url, **kw)  # type: ignore[arg-type]
        if r.status_code >= 400:
            stats.err(f"{method} {urlparse(url).path.split('/')[-1] or url} -> {r.status_code}")
        else:
            stats.ok(time.perf_counter() - t)
    except httpx.HTTPError as exc:
        stats.err(type(exc).__name__)


async def mixed(base: str, key: str, job_id: str, clients: int, duration: float) -> tuple[Stats, float]:
    stats, headers = Stats(), {"Authorization": f"Bearer {key}"}
    urls = [
        f"{base}/v1/fine_tuning/jobs/{job_id}",
        f"{base}/v1/fine_tuning/jobs?limit=20",
        f"{base}/v1/fine_tuning/jobs/{job_id}/events?limit=20",
    ]
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(headers=headers, timeout=30, limits=limits) as client:
        stop = time.monotonic() + duration

        async def one(i: int) -> None:
            n = i
            while time.monotonic() < stop:
                await _timed(stats, client, "GET", urls[n % len(urls)])
                n += 1

        t = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(clients)))
        elapsed = time.monotonic() - t
    return stats, elapsed


async def _jsonl(total: int, chunk: int = 1 << 20) -> AsyncIterator[bytes]:
    row = {"messages": [{"role": "user", "content": "q " * 200}, {"role": "assistant", "content": "a " * 250}]}
    line = (json.dumps(row) + "\n").encode()
    block = line * max(1, chunk // len(line))
    sent = 0
    while sent < total:
        part = block[: total - sent]
        sent += len(part)
        yield part
        await asyncio.sleep(0)


def _multipart(total: int, boundary: str = "keelbench") -> tuple[AsyncIterator[bytes], dict[str, str]]:
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\n'
        "Content-Type: application/jsonl\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    async def body() -> AsyncIterator[bytes]:
        yield head
        async for part in _jsonl(total):
            yield part
        yield tail

    return body(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def _probe(url: str, stop: multiprocessing.synchronize.Event, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """GET ``url`` every 50 ms until ``stop``; puts (latencies, errors)."""
    lat: list[float] = []
    errors: dict[str, int] = {}
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            t = time.perf_counter()
            try:
                r = client.get(url)
                if r.status_code == 200:
                    lat.append(time.perf_counter() - t)
                else:
                    errors[str(r.status_code)] = errors.get(str(r.status_code), 0) + 1
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            time.sleep(0.05)
    out.put((lat, errors))


async def held(
    base: str, key: str, job_id: str, streams: int, upload_mb: int, hold_s: float, max_s: float
) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {key}"}
    health, stream_err = Stats(), Stats()
    opened = 0
    done = asyncio.Event()
    limits = httpx.Limits(max_connections=streams + 8, max_keepalive_connections=streams + 8)
    async with httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(60, read=120), limits=limits) as client:

        async def stream() -> None:
            nonlocal opened
            try:
                url = f"{base}/v1/fine_tuning/jobs/{job_id}/events?stream=true"
                async with client.stream("GET", url) as r:
                    if r.status_code != 200:
                        stream_err.err(f"stream -> {r.status_code}")
                        return
                    opened += 1
                    async for _ in r.aiter_bytes():
                        if done.is_set():
                            return
            except httpx.HTTPError as exc:
                stream_err.err(type(exc).__name__)

        async def upload() -> tuple[int | str, float]:
            body, h = _multipart(upload_mb << 20)
            t = time.perf_counter()
            try:
                r = await client.post(f"{base}/v1/files", content=body, headers=h, timeout=httpx.Timeout(max_s))
                return r.status_code, time.perf_counter() - t
            except httpx.HTTPError as exc:
                return type(exc).__name__, time.perf_counter() - t

        async def uploads() -> list[tuple[int | str, float]]:
            out: list[tuple[int | str, float]] = []
            until = time.monotonic() + hold_s
            while not out or time.monotonic() < until:  # one upload in flight all along
                out.append(await upload())
            return out

        tasks = [asyncio.create_task(stream()) for _ in range(streams)]
        await asyncio.sleep(1.0)  # let the streams open before the upload starts
        ctx = multiprocessing.get_context("spawn")
        stop, results = ctx.Event(), ctx.Queue()
        prober = ctx.Process(target=_probe, args=(f"{base}/healthz", stop, results), daemon=True)
        prober.start()
        try:
            ups = await asyncio.wait_for(uploads(), max_s)
        except TimeoutError:
            ups = [("timeout", max_s)]
        stop.set()
        done.set()
        lat, errors = await asyncio.to_thread(results.get, True, 30)
        prober.join(timeout=10)
        health.lat, health.errors = lat, errors
        for t in tasks:
            t.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
    return {"health": health, "streams_opened": opened, "stream_errors": stream_err.errors, "uploads": ups}


def _check_loopback(url: str) -> None:
    host = urlparse(url).hostname or ""
    if host not in LOOPBACK:
        sys.exit(f"load.py only targets loopback (127.0.0.1), not {host!r}")


async def _with_probe(base: str, work: object) -> tuple[object, Stats]:
    """Await ``work`` while /healthz is probed from a process of its own; (its result, /healthz stats)."""
    ctx = multiprocessing.get_context("spawn")
    stop, results = ctx.Event(), ctx.Queue()
    prober = ctx.Process(target=_probe, args=(f"{base}/healthz", stop, results), daemon=True)
    prober.start()
    try:
        out = await work  # type: ignore[misc]
    finally:
        stop.set()
    health = Stats()
    health.lat, health.errors = await asyncio.to_thread(results.get, True, 30)
    prober.join(timeout=10)
    return out, health


async def compare_hostile(args: argparse.Namespace, base: str, key: str, job_id: str, admin: str) -> None:
    """The mixed phase without, then with the hostile client (bench/hostile.py), /healthz probed in both."""
    from bench.hostile import hostile

    rows = []
    for label in ("without", "with"):
        stop = asyncio.Event()
        attack = asyncio.create_task(hostile(base, admin, stop)) if label == "with" else None
        if attack is not None:
            await asyncio.sleep(3.0)  # its setup done and its attacks under way
        (honest, _), health = await _with_probe(base, mixed(base, key, job_id, args.clients, args.duration))
        stop.set()
        seen = await asyncio.wait_for(attack, 60) if attack is not None else {}
        assert isinstance(honest, Stats)
        rows.append((label, honest, health, seen))
    print(f"\n[hostile] {args.clients} honest clients x {args.duration:.0f} s, /healthz probed every 50 ms")
    print("| run | honest p50 ms | honest p99 ms | honest errors | /healthz p50 ms | /healthz p99 ms |")
    print("|---|---|---|---|---|---|")
    for label, honest, health, _ in rows:
        med = statistics.median(health.lat) * 1000 if health.lat else float("nan")
        hmed = statistics.median(honest.lat) * 1000 if honest.lat else float("nan")
        print(
            f"| {label} hostile | {hmed:.1f} | {honest.pct(0.99):.1f} | {sum(honest.errors.values())} "
            f"| {med:.1f} | {health.pct(0.99):.1f} |"
        )
    (_, h0, p0, _), (_, h1, p1, seen) = rows
    print(
        f"ratios with/without: honest p99 {h1.pct(0.99) / h0.pct(0.99):.2f}x, "
        f"/healthz p99 {p1.pct(0.99) / p0.pct(0.99):.2f}x"
    )
    print(f"hostile client got: {seen}")
    for label, honest, health, _ in rows:
        if honest.errors or health.errors:
            print(f"errors {label} hostile: honest {honest.errors}  healthz {health.errors}")


async def run(args: argparse.Namespace, base: str, key: str, job_id: str) -> None:
    print(f"target {base}  job {job_id}", flush=True)
    stats, elapsed = await mixed(base, key, job_id, args.clients, args.duration)
    n = len(stats.lat) + sum(stats.errors.values())
    print(f"\n[mixed] {args.clients} clients x {args.duration:.0f} s (GET job / list jobs / events page)")
    print(f"  {n} requests, {len(stats.lat) / elapsed:.1f} req/s ok  {stats.line()}")
    if stats.errors:
        print(f"  errors: {stats.errors}")
    res = await held(base, key, job_id, args.streams, args.upload_mb, args.hold_s, args.max_upload_s)
    health, ups = res["health"], res["uploads"]
    assert isinstance(health, Stats) and isinstance(ups, list)
    print(
        f"\n[held] {res['streams_opened']}/{args.streams} SSE streams open + one {args.upload_mb} MB upload in flight"
    )
    print(f"  {len(ups)} upload(s) back to back: " + ", ".join(f"{st} in {sec:.1f} s" for st, sec in ups))
    print(f"  /healthz x{len(health.lat)}: {health.line()}")
    verdict = "OK" if health.pct(0.99) < 100 and not health.errors else "OVER"
    print(f"  /healthz p99 < 100 ms: {verdict}")
    if res["stream_errors"] or health.errors:
        print(f"  errors: streams {res['stream_errors']}  healthz {health.errors}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", help="a running API on loopback (default: start an embedded one)")
    ap.add_argument("--key", help="tenant API key (with --url)")
    ap.add_argument("--job", help="a job id of that tenant (with --url)")
    ap.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of the mixed phase (max 120)")
    ap.add_argument("--streams", type=int, default=50)
    ap.add_argument("--upload-mb", type=int, default=200)
    ap.add_argument("--hold-s", type=float, default=20.0, help="seconds of the held phase (uploads back to back)")
    ap.add_argument("--max-upload-s", type=float, default=240.0, help="the held phase ends by then")
    ap.add_argument("--hostile", action="store_true", help="only the mixed phase, without then with bench/hostile.py")
    args = ap.parse_args()
    args.clients, args.streams = min(args.clients, 200), min(args.streams, 200)
    args.duration, args.upload_mb = min(args.duration, 120.0), min(args.upload_mb, 500)
    if args.url:
        _check_loopback(args.url)
        if not (args.key and args.job):
            sys.exit("--url needs --key and --job")
        asyncio.run(run(args, args.url.rstrip("/"), args.key, args.job))
        return
    from bench._service import service

    env = {"KEEL_MAX_STREAMS_PER_TENANT": str(args.streams + 5), "KEEL_RATE_LIMIT_RPS": "0"}
    with service(args.database, extra_env=env) as svc:
        if args.hostile:
            asyncio.run(compare_hostile(args, svc.url, svc.tenant, svc.job_id, svc.admin))
        else:
            asyncio.run(run(args, svc.url, svc.tenant, svc.job_id))


if __name__ == "__main__":
    main()
