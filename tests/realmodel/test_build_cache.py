"""The real-model build goes through tuning.atomic.cached_build, like the testbed's: built once under the cache
lock, and what a killed build left (.build-*) is cleared by the next one."""

from __future__ import annotations

import pytest

pytest.importorskip("gguf")
pytest.importorskip("torch")


def test_a_real_model_build_is_cached_and_clears_a_killed_builds_leftovers(tmp_path, monkeypatch):
    from test_gguf import write_tiny_llama_gguf

    import realmodel.build as build

    src, root = tmp_path / "tiny.gguf", tmp_path / "rm"
    write_tiny_llama_gguf(src)
    monkeypatch.setenv("KEEL_MODELS_DIR", str(tmp_path / "models"))
    (root / ".build-deadbeef" / "alignment_adapter").mkdir(parents=True)
    calls = []

    def fake_build(out, *args):
        calls.append(out.name)
        (out / "manifest.json").write_text("{}")

    monkeypatch.setattr(build, "_build", fake_build)
    first = build.build_real_model(src, cache_root=root)
    again = build.build_real_model(src, cache_root=root)
    assert len(calls) == 1 and calls[0].startswith(".build-") and again.root == first.root
    assert sorted(p.name for p in root.iterdir()) == [".lock", first.root.name]
