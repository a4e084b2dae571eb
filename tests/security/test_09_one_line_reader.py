"""Item 9: upload validation and the worker read a file's lines with one reader, so a JSON string holding
U+2028, U+2029 or U+0085 unescaped is one line for both (``str.splitlines`` split it on the worker)."""

from __future__ import annotations

import io
import json

from tests.factories import chat_rows
from tests.fixtures.service import upload


def _rows_with_separators() -> bytes:
    rows = chat_rows(12)
    for i, row in enumerate(rows):
        row["messages"][-1]["content"] += ("\u2028", "\u2029", "\u0085")[i % 3] + " and more"
    return ("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n").encode("utf-8")


def test_a_file_valid_at_upload_reads_the_same_on_the_worker(client, keys):
    from tuning.rows import read_examples, read_jsonl

    data = _rows_with_separators()
    r = upload(client, keys["alice"], data)
    assert r.status_code == 200, r.text
    v = r.json()["validation"]
    assert v["valid"] is True and v["n_examples"] == 12, v
    examples = read_examples(data)  # what workers.context hands the trainer
    assert len(examples) == 12
    assert examples[0][-1]["content"].endswith("\u2028 and more")
    assert len(read_examples(io.BytesIO(data))) == 12  # streamed from the store the same way
    assert len(read_jsonl(data)) == 12  # the safety corpora's reader
