"""The warm-worker model cache: hits return the same object, the byte budget evicts least recently used models,
and a job trained on a borrowed model leaves nothing behind (the next job trains exactly as on a cold load)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.tuning.test_train import DATA, LORA
from tuning.model_cache import ModelCache, model_bytes
from tuning.modeling import load_model
from tuning.specs import TrainSpec
from tuning.train import train_lora


class FakeLoader:
    """Models of ``size`` float32 weights per path, counting loads."""

    def __init__(self, sizes: dict[str, int]) -> None:
        self.sizes, self.loads = sizes, []

    def __call__(self, path: str, device: str | None):
        self.loads.append(Path(path).name)
        return torch.nn.Linear(self.sizes[Path(path).name], 1, bias=False), f"tok-{Path(path).name}"


def _cache(tmp_path, budget, sizes):
    for name in sizes:
        (tmp_path / name).mkdir(exist_ok=True)
    loader = FakeLoader(sizes)
    return ModelCache(budget, loader), loader, {n: str(tmp_path / n) for n in sizes}


def test_a_hit_returns_the_same_object_and_the_budget_evicts_least_recently_used(tmp_path):
    cache, loader, path = _cache(tmp_path, 1000, {"a": 100, "b": 100, "c": 60, "huge": 300})  # 400/400/240/1200 B
    a = cache.get(path["a"])
    assert cache.get(path["a"]) is a and a.nbytes == 400 and loader.loads == ["a"]
    assert cache.get(path["a"], device="meta") is not a  # another device is another entry
    cache.clear()
    a, b = cache.get(path["a"]), cache.get(path["b"])
    cache.get(path["a"])  # a is now the most recently used
    cache.get(path["c"])  # 400 + 400 + 240 > 1000 bytes: b goes
    assert path["a"] in cache and path["c"] in cache and path["b"] not in cache and cache.nbytes == 640
    assert cache.get(path["a"]) is a and cache.get(path["b"]) is not b  # b is loaded again
    assert loader.loads == ["a", "a", "a", "b", "c", "b"] and cache.nbytes <= 1000
    huge = cache.get(path["huge"])  # bigger than the whole budget: handed out, not kept
    assert path["huge"] not in cache and cache.get(path["huge"]) is not huge
    off, loader, path = _cache(tmp_path, 0, {"a": 100})
    assert off.get(path["a"]) is not off.get(path["a"]) and len(off) == 0 and loader.loads == ["a", "a"]


def test_a_model_rewritten_in_place_is_loaded_again(tmp_path):
    cache, loader, path = _cache(tmp_path, 1000, {"a": 10})
    first = cache.get(path["a"])
    (tmp_path / "a" / "config.json").write_text("{}")
    assert cache.get(path["a"]) is not first and loader.loads == ["a", "a"]


def test_a_failed_borrower_drops_the_entry(tmp_path):
    cache, loader, path = _cache(tmp_path, 1000, {"a": 10})
    with pytest.raises(RuntimeError), cache.borrow(path["a"]):
        raise RuntimeError("training crashed half way")
    assert len(cache) == 0


def _adapter(run_dir: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(f"{run_dir}/adapter_model.safetensors")


def test_jobs_on_a_warm_model_train_exactly_as_on_a_cold_load(tiny, tmp_path):
    """Two different jobs, then the first again, on one borrowed model: every adapter equals the one trained on
    a freshly loaded model, and the cached model is the pristine base again afterwards."""
    spec = TrainSpec(n_epochs=2, batch_size=4, learning_rate=1e-2, checkpoint_every=0, seed=3)
    other = TrainSpec(n_epochs=1, batch_size=8, learning_rate=5e-3, checkpoint_every=0, seed=5)
    jobs = [(spec, tiny["alignment"]), (other, None), (spec, tiny["alignment"])]  # continued and fresh LoRAs
    cold = []
    for i, (s, init) in enumerate(jobs[:2]):
        model, tok = load_model(tiny["base"], device="cpu")
        cold.append(
            _adapter(train_lora(model, tok, DATA, s, LORA, str(tmp_path / f"c{i}"), init_adapter=init).adapter_dir)
        )
    cold.append(cold[0])
    pristine, _ = load_model(tiny["base"], device="cpu")
    cache = ModelCache(10 * model_bytes(pristine))
    for i, (s, init) in enumerate(jobs):
        with cache.borrow(tiny["base"], device="cpu") as base:
            res = train_lora(base.model, base.tok, DATA, s, LORA, str(tmp_path / f"w{i}"), init_adapter=init)
        warm = _adapter(res.adapter_dir)
        assert warm.keys() == cold[i].keys() and all(torch.equal(warm[k], cold[i][k]) for k in warm), i
    assert cache.hits == 2 and cache.misses == 1
    model = cache.get(tiny["base"], device="cpu").model
    assert [type(m) for m in model.modules()] == [type(m) for m in pristine.modules()]
    assert model.state_dict().keys() == pristine.state_dict().keys()
    assert all(torch.equal(v, pristine.state_dict()[k]) for k, v in model.state_dict().items())
    assert all(p.requires_grad for p in model.parameters()) and not model.training
    assert "peft_config" not in vars(model)
