"""The official `openai` Python client works against Keel by base_url."""

from __future__ import annotations

import io
import socket
import threading
import time

import openai
import pytest
import uvicorn

from tests.factories import chat_rows, to_jsonl


@pytest.fixture(scope="module")
def base_url(stack, keys):
    from api.main import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(timeout=10)


def test_openai_client_uploads_creates_lists_and_retrieves(base_url, keys):
    client = openai.OpenAI(base_url=base_url, api_key=keys["alice"], max_retries=0)
    f = client.files.create(file=("train.jsonl", io.BytesIO(to_jsonl(chat_rows(12)))), purpose="fine-tune")
    assert f.id.startswith("file-") and f.status == "processed"
    job = client.fine_tuning.jobs.create(
        model="micro", training_file=f.id, suffix="sdk", extra_body={"safety": {"realign": "auto"}}
    )
    assert job.status == "queued" and job.training_file == f.id
    listed = client.fine_tuning.jobs.list(limit=5)
    assert job.id in [j.id for j in listed.data]
    got = client.fine_tuning.jobs.retrieve(job.id)
    assert got.id == job.id and got.model == "micro"
    events = client.fine_tuning.jobs.list_events(job.id, limit=10)
    assert any("Created fine-tuning job" in e.message for e in events.data)
    assert client.fine_tuning.jobs.pause(job.id).status == "paused"
    assert client.fine_tuning.jobs.resume(job.id).status == "queued"
    cancelled = client.fine_tuning.jobs.cancel(job.id)
    assert cancelled.status == "cancelled"
    content = client.files.content(f.id).read()
    assert content == to_jsonl(chat_rows(12))


def test_openai_client_raises_typed_errors(base_url, keys):
    client = openai.OpenAI(base_url=base_url, api_key=keys["alice"], max_retries=0)
    with pytest.raises(openai.NotFoundError) as err:
        client.fine_tuning.jobs.retrieve("ftjob-doesnotexist")
    assert err.value.body["code"] == "not_found"
    bad = openai.OpenAI(base_url=base_url, api_key="sk-nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.fine_tuning.jobs.list()
