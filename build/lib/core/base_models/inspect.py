"""What a registered base model directory offers, read without torch: its config and its weight names
(safetensors headers), so job options can be checked when the job is created rather than on the worker."""

from __future__ import annotations

import json
import struct
from pathlib import Path


def is_model_dir(path: str) -> bool:
    return Path(path).is_dir() and (Path(path) / "config.json").is_file()


def _header_keys(file: Path) -> list[str]:
    with open(file, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
    return [k for k in header if k != "__metadata__"]


def weight_names(path: str) -> list[str]:
    """Every tensor name of the model's safetensors weights ([] when there are none to read)."""
    root = Path(path)
    index = root / "model.safetensors.index.json"
    if index.is_file():
        return list(json.loads(index.read_text()).get("weight_map", {}))
    return [k for f in sorted(root.glob("*.safetensors")) for k in _header_keys(f)]


def module_leaf_names(path: str) -> set[str]:
    """Leaf names of modules that own a ``.weight`` (``q_proj``, ``down_proj``, ...)."""
    return {k.rsplit(".", 2)[-2] for k in weight_names(path) if k.endswith(".weight") and k.count(".") >= 1}
