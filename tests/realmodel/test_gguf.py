"""GGUF import smoke test: a tiny llama GGUF written here with the ``gguf`` package (a few KB, byte-level BPE
tokenizer metadata and a chat template) is converted to an HF directory, loaded with the Auto classes, chat
templated and trained for one LoRA step. Never loads SmolLM2."""

from __future__ import annotations

import json

import pytest

gguf = pytest.importorskip("gguf")
torch = pytest.importorskip("torch")

from tuning import gguf as kg  # noqa: E402

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
HIDDEN, INTER, LAYERS, HEADS, KV_HEADS = 16, 32, 2, 2, 1


def _byte_alphabet() -> list[str]:
    """GPT-2's byte → printable-unicode map, in byte order (what a byte-level GGUF vocabulary spells)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs, strict=True))]


def write_tiny_llama_gguf(path, seed: int = 0) -> None:
    """The minimal metadata transformers needs: architecture + hyperparameters, tokenizer.ggml.{model, pre,
    tokens, token_type, merges, bos/eos/padding ids}, tokenizer.chat_template; F32 tensors (tied head)."""
    merges = ["Ġ t", "h e", "Ġt he", "i n", "e r"]
    tokens = SPECIALS + _byte_alphabet() + [m.replace(" ", "") for m in merges]
    types = [gguf.TokenType.CONTROL] * len(SPECIALS) + [gguf.TokenType.NORMAL] * (len(tokens) - len(SPECIALS))
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-llama-test")
    w.add_context_length(128)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(INTER)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([int(t) for t in types])
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_pad_token_id(0)
    w.add_chat_template(CHAT_TEMPLATE)
    g = torch.Generator().manual_seed(seed)

    def t(*shape: int):
        return (torch.randn(*shape, generator=g) * 0.1).numpy()

    head_dim = HIDDEN // HEADS
    w.add_tensor("token_embd.weight", t(len(tokens), HIDDEN))
    w.add_tensor("output_norm.weight", torch.ones(HIDDEN).numpy())
    for i in range(LAYERS):
        w.add_tensor(f"blk.{i}.attn_norm.weight", torch.ones(HIDDEN).numpy())
        w.add_tensor(f"blk.{i}.ffn_norm.weight", torch.ones(HIDDEN).numpy())
        w.add_tensor(f"blk.{i}.attn_q.weight", t(HIDDEN, HIDDEN))
        w.add_tensor(f"blk.{i}.attn_k.weight", t(KV_HEADS * head_dim, HIDDEN))
        w.add_tensor(f"blk.{i}.attn_v.weight", t(KV_HEADS * head_dim, HIDDEN))
        w.add_tensor(f"blk.{i}.attn_output.weight", t(HIDDEN, HIDDEN))
        w.add_tensor(f"blk.{i}.ffn_gate.weight", t(INTER, HIDDEN))
        w.add_tensor(f"blk.{i}.ffn_up.weight", t(INTER, HIDDEN))
        w.add_tensor(f"blk.{i}.ffn_down.weight", t(HIDDEN, INTER))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    root = tmp_path_factory.mktemp("gguf")
    src = root / "tiny.gguf"
    write_tiny_llama_gguf(src)
    return src, kg.convert_gguf(src, root / "cache")


def test_find_gguf(tmp_path):
    with pytest.raises(kg.GGUFNotFound):
        kg.find_gguf(tmp_path)
    with pytest.raises(kg.GGUFNotFound, match="not installed"):
        kg.package_gguf("keel_no_such_package_xyz")
    (tmp_path / "a.gguf").write_bytes(b"x")
    assert kg.find_gguf(tmp_path) == tmp_path / "a.gguf"


def test_convert_is_cached_by_content(converted):
    src, out = converted
    man = kg.manifest(out)
    assert man["sha256"] == kg.file_sha256(src) and man["architecture"] == "LlamaForCausalLM"
    assert man["verify_max_abs_logit_diff"] is not None and man["verify_max_abs_logit_diff"] < 1e-4
    assert "quantization_config" not in json.loads((out / "config.json").read_text())
    mtime = (out / kg.MANIFEST).stat().st_mtime_ns
    assert kg.convert_gguf(src, out.parent) == out and (out / kg.MANIFEST).stat().st_mtime_ns == mtime
    assert not list(out.parent.glob(".convert-*"))


def test_load_chat_template_and_one_lora_step(converted, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tuning.specs import LoraSpec, TrainSpec
    from tuning.train import train_lora

    _, out = converted
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    chat = [{"role": "user", "content": "hi there"}, {"role": "assistant", "content": "the answer"}]
    text = tok.apply_chat_template(chat, tokenize=False)
    assert text == "<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\nthe answer<|im_end|>\n"
    ids = tok.apply_chat_template(chat[:1], tokenize=True, add_generation_prompt=True)
    ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
    assert ids[0] == tok.convert_tokens_to_ids("<|im_start|>") and tok.decode(ids) == tok.apply_chat_template(
        chat[:1], tokenize=False, add_generation_prompt=True
    )
    spec = TrainSpec(n_epochs=1, batch_size=2, learning_rate=1e-3, max_seq_len=64, checkpoint_every=0)
    res = train_lora(model, tok, [chat, chat], spec, LoraSpec(r=2, alpha=4), str(tmp_path / "run"), resume=False)
    assert res.steps == 1 and res.final_loss == res.final_loss
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").exists()
