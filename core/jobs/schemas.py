"""Request bodies (pydantic): OpenAI's CreateFineTuningJobRequest plus Keel's `lora`, `safety`, `dry_run`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from core.lora import LoraOptions
from core.schemas import Body
from tuning.safety.registry import METHOD_NAMES

Auto = Literal["auto"]


_RANGES = {
    "n_epochs": (1, 50, "between 1 and 50"),
    "batch_size": (1, 256, "between 1 and 256"),
    "learning_rate_multiplier": (0, 100, "in (0, 100]"),
}


class Hyperparameters(Body):
    n_epochs: Auto | int = "auto"
    batch_size: Auto | int = "auto"
    learning_rate_multiplier: Auto | float = "auto"

    @field_validator("n_epochs", "batch_size", "learning_rate_multiplier")
    @classmethod
    def _in_range(cls, v: Any, info: ValidationInfo) -> Any:
        lo, hi, text = _RANGES[str(info.field_name)]
        if v != "auto" and not (lo < v <= hi if lo == 0 else lo <= v <= hi):
            raise ValueError(f"{info.field_name} must be 'auto' or {text}")
        return v


class Supervised(Body):
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)


class Method(Body):
    type: Literal["supervised"] = "supervised"
    supervised: Supervised = Field(default_factory=Supervised)


class SafetyOptions(Body):
    # the accepted names are the worker's: the one registry (torch-free), never a list of our own
    realign: str = Field(default="auto", json_schema_extra={"enum": list(METHOD_NAMES)})

    @field_validator("realign")
    @classmethod
    def _known_method(cls, v: str) -> str:
        if v not in METHOD_NAMES:
            raise ValueError(f"safety.realign must be one of {', '.join(METHOD_NAMES)}; got {v!r}")
        return v


class JobCreate(Body):
    model: str
    training_file: str
    validation_file: str | None = None
    hyperparameters: Hyperparameters | None = None  # deprecated by OpenAI in favour of method
    method: Method | None = None
    suffix: str | None = Field(default=None, min_length=1, max_length=64)
    seed: int | None = Field(default=None, ge=0, le=2147483647)
    metadata: dict[str, str] | None = None
    integrations: list[dict[str, Any]] | None = Field(
        default=None, description="Not supported: must be absent or empty", json_schema_extra={"maxItems": 0}
    )
    lora: LoraOptions = Field(default_factory=LoraOptions)
    safety: SafetyOptions = Field(default_factory=SafetyOptions)
    dry_run: bool = False
    keep_last_checkpoint: bool = Field(
        default=False,
        description="Keel: keep the newest training checkpoint after the job finishes (retention drops the rest)",
    )

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, v: Any) -> Any:
        if v is None:
            return v
        if len(v) > 16 or any(len(k) > 64 or len(val) > 512 for k, val in v.items()):
            raise ValueError("metadata: at most 16 pairs, keys up to 64 and values up to 512 characters")
        return v

    def requested_hyperparameters(self) -> Hyperparameters:
        if self.method is not None:
            return self.method.supervised.hyperparameters
        return self.hyperparameters or Hyperparameters()
