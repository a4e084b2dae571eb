"""Local store backend: keys stay inside the root, writes are atomic, directories round-trip."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from models_store import LocalStore, Store, build_adapter_zip, sha256_file


def test_local_store_implements_the_protocol(tmp_path):
    assert isinstance(LocalStore(tmp_path), Store)


def test_bytes_and_streams_round_trip_and_delete(tmp_path):
    store = LocalStore(tmp_path)
    store.put_bytes("a/b.bin", b"hello")
    assert store.put_stream("a/c.bin", [b"x" * 3, b"y" * 4]) == 7
    assert store.get_bytes("a/b.bin") == b"hello" and store.size("a/c.bin") == 7
    with store.open("a/c.bin") as fh:
        assert fh.read() == b"xxxyyyy"
    store.delete("a/b.bin")
    assert not store.exists("a/b.bin") and store.exists("a/c.bin")


def test_keys_cannot_escape_the_root(tmp_path):
    store = LocalStore(tmp_path / "root")
    for key in ("../evil", "a/../../evil", "/etc/passwd"):
        with pytest.raises(ValueError):
            store.put_bytes(key, b"x")


def test_a_failing_stream_leaves_no_partial_file(tmp_path):
    store = LocalStore(tmp_path)

    def chunks():
        yield b"partial"
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        store.put_stream("f.jsonl", chunks())
    assert not store.exists("f.jsonl")
    assert [p.name for p in tmp_path.iterdir()] == []


def test_directories_round_trip_and_replace_atomically(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "w.bin").write_bytes(b"1")
    (src / "sub" / "x.txt").write_text("2")
    store = LocalStore(tmp_path / "store")
    store.put_dir("masks/m/v1", src)
    (src / "w.bin").write_bytes(b"3")
    store.put_dir("masks/m/v1", src)  # a second write replaces the first whole
    out = tmp_path / "out"
    store.get_dir("masks/m/v1", out)
    assert (out / "w.bin").read_bytes() == b"3" and (out / "sub" / "x.txt").read_text() == "2"


def test_adapter_zip_is_deterministic_with_a_checksummed_manifest(tmp_path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.safetensors").write_bytes(b"\0" * 64)
    m1 = build_adapter_zip(adapter, tmp_path / "a.zip", {"job_id": "j"})
    build_adapter_zip(adapter, tmp_path / "b.zip", {"job_id": "j"})
    assert sha256_file(tmp_path / "a.zip") == sha256_file(tmp_path / "b.zip")
    assert set(m1["files"]) == {"adapter_config.json", "adapter_model.safetensors"}
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        assert sorted(zf.namelist()) == ["adapter_config.json", "adapter_model.safetensors", "manifest.json"]


def test_a_directory_replaced_in_a_failed_write_is_kept_whole(tmp_path, monkeypatch):
    """The store writes directories through the house's one atomic_dir: a failed swap puts the old one back."""
    store, src = LocalStore(tmp_path / "root"), tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("old")
    store.put_dir("masks/m/v1", src)
    (src / "a.txt").write_text("new")
    real = os.replace

    def failing(a, b):
        if Path(b).name == "v1" and not Path(a).name.endswith(".old"):
            raise OSError("disk gone")
        return real(a, b)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError):
        store.put_dir("masks/m/v1", src)
    monkeypatch.undo()
    assert (store.root / "masks/m/v1/a.txt").read_text() == "old"
    assert sorted(p.name for p in (store.root / "masks/m").iterdir()) == ["v1"]
