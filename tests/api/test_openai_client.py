"""The official `openai` Python client works against Keel by base_url."""

from __future__ import annotations

import io

import openai
import pytest

from tests.factories import chat_rows, to_jsonl


@pytest.fixture(scope="module")
def base_url(live_url):
    return f"{live_url}/v1"


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
