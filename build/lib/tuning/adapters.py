"""Read, write and pair PEFT LoRA adapter files as plain state dicts.

Adapter keys are the ones PEFT saves in ``adapter_model.safetensors`` (no adapter name), e.g.
``base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight``. A *module name* is the key prefix
before ``.lora_A.weight`` / ``.lora_B.weight``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from tuning.atomic import atomic_dir

WEIGHTS_NAME = "adapter_model.safetensors"
CONFIG_NAME = "adapter_config.json"
_A, _B = ".lora_A.weight", ".lora_B.weight"


@dataclass
class Adapter:
    """A LoRA adapter in memory: tensors keyed as PEFT saves them, plus its adapter_config.json."""

    state: dict[str, torch.Tensor]
    config: dict

    @property
    def scale(self) -> float:
        return float(self.config["lora_alpha"]) / float(self.config["r"])

    def modules(self) -> list[str]:
        return sorted(k[: -len(_A)] for k in self.state if k.endswith(_A))

    def pair(self, module: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(A [r, in], B [out, r]) for one module."""
        return self.state[module + _A], self.state[module + _B]

    def delta(self, module: str) -> torch.Tensor:
        """The merged update s·B·A [out, in] in float32."""
        a, b = self.pair(module)
        return self.scale * (b.float() @ a.float())

    def clone(self) -> Adapter:
        return Adapter({k: v.detach().clone() for k, v in self.state.items()}, json.loads(json.dumps(self.config)))


def a_key(module: str) -> str:
    return module + _A


def b_key(module: str) -> str:
    return module + _B


def read_adapter(path: str | os.PathLike) -> Adapter:
    path = Path(path)
    config = json.loads((path / CONFIG_NAME).read_text())
    state = load_file(str(path / WEIGHTS_NAME))
    return Adapter(state=state, config=config)


def write_adapter(path: str | os.PathLike, adapter: Adapter) -> None:
    """Write atomically: files go to a temporary sibling directory that is renamed into place."""
    with atomic_dir(path) as tmp:
        save_file({k: v.contiguous() for k, v in adapter.state.items()}, str(tmp / WEIGHTS_NAME))
        (tmp / CONFIG_NAME).write_text(json.dumps(adapter.config, indent=2, sort_keys=True))
