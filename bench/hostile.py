"""The hostile client of ``bench/load.py --hostile``: a tenant of its own that, while the honest clients run,
keeps (1) unauthenticated uploads in flight that announce 100 MB and send 1 MB, (2) an SSE stream open on its
own paused job without reading it, (3) dry runs of a file invalid for the model, back to back."""

from __future__ import annotations

import asyncio
import contextlib
import json
from urllib.parse import urlparse

import httpx

ROW = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "zorp " * 5000}]}


async def _setup(base: str, admin: str) -> tuple[str, str, str]:
    """(key, paused job id, invalid file id) of a new tenant."""
    async with httpx.AsyncClient(timeout=60) as c:
        r = await c.post(
            f"{base}/v1/admin/tenants", json={"name": "mallory"}, headers={"Authorization": f"Bearer {admin}"}
        )
        key = r.json()["api_key"]
        h = {"Authorization": f"Bearer {key}"}
        good = "".join(
            json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "zorp"}]})
            + "\n"
            for _ in range(12)
        )
        fid = (
            await c.post(
                f"{base}/v1/files", headers=h, files={"file": ("g.jsonl", good)}, data={"purpose": "fine-tune"}
            )
        ).json()["id"]
        job = (
            await c.post(f"{base}/v1/fine_tuning/jobs", headers=h, json={"model": "micro", "training_file": fid})
        ).json()["id"]
        await c.post(f"{base}/v1/fine_tuning/jobs/{job}/pause", headers=h)
        bad = good + json.dumps(ROW) + "\n"  # valid JSONL, over the micro model's context
        bad_id = (
            await c.post(f"{base}/v1/files", headers=h, files={"file": ("b.jsonl", bad)}, data={"purpose": "fine-tune"})
        ).json()["id"]
    return key, job, bad_id


async def _unauthenticated_upload(base: str) -> str:
    u = urlparse(base)
    reader, writer = await asyncio.open_connection(u.hostname, u.port)
    head = (
        "POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {100 << 20}\r\n\r\n"
    ).encode()
    try:
        writer.write(head)
        for _ in range(16):
            writer.write(b"x" * (64 << 10))
            await asyncio.wait_for(writer.drain(), 10)
        line = await asyncio.wait_for(reader.readline(), 10)
        return line.decode(errors="replace").split(" ")[1] if line else "closed"
    except (OSError, TimeoutError) as exc:
        return type(exc).__name__
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def hostile(base: str, admin: str, stop: asyncio.Event) -> dict[str, dict[str, int]]:
    """Run until ``stop``; returns what each attack got back (status codes or errors, counted)."""
    key, job, bad = await _setup(base, admin)
    h = {"Authorization": f"Bearer {key}"}
    seen: dict[str, dict[str, int]] = {"unauth_upload": {}, "invalid_dry_run": {}, "stream": {}}

    def count(kind: str, what: object) -> None:
        seen[kind][str(what)] = seen[kind].get(str(what), 0) + 1

    async def uploads() -> None:
        while not stop.is_set():
            count("unauth_upload", await _unauthenticated_upload(base))

    async def dry_runs(c: httpx.AsyncClient) -> None:
        body = {"model": "micro", "training_file": bad, "dry_run": True}
        while not stop.is_set():
            r = await c.post(f"{base}/v1/fine_tuning/jobs", headers=h, json=body)
            count("invalid_dry_run", r.status_code)

    async def abandoned(c: httpx.AsyncClient) -> None:
        async with c.stream("GET", f"{base}/v1/fine_tuning/jobs/{job}/events?stream=true", headers=h) as r:
            count("stream", r.status_code)
            await stop.wait()  # never reads the body

    async with httpx.AsyncClient(timeout=httpx.Timeout(60, read=None)) as c:
        await asyncio.gather(uploads(), uploads(), dry_runs(c), abandoned(c))
    return seen
