"""Request bodies (pydantic): OpenAI's CreateFineTuningJobRequest plus Keel's `lora`, `safety`, `dry_run`."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Auto = Literal["auto"]
REALIGN_METHODS = ("auto", "keel", "repair", "nlsr", "fgsn", "safelora", "none")


class Hyperparameters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n_epochs: Auto | int = Field(default="auto")
    batch_size: Auto | int = Field(default="auto")
    learning_rate_multiplier: Auto | float = Field(default="auto")

    @field_validator("n_epochs")
    @classmethod
    def _epochs(cls, v):  # noqa: ANN001, ANN206
        if v != "auto" and not 1 <= v <= 50:
            raise ValueError("n_epochs must be 'auto' or between 1 and 50")
        return v

    @field_validator("batch_size")
    @classmethod
    def _bs(cls, v):  # noqa: ANN001, ANN206
        if v != "auto" and not 1 <= v <= 256:
            raise ValueError("batch_size must be 'auto' or between 1 and 256")
        return v

    @field_validator("learning_rate_multiplier")
    @classmethod
    def _lr(cls, v):  # noqa: ANN001, ANN206
        if v != "auto" and not 0 < v <= 100:
            raise ValueError("learning_rate_multiplier must be 'auto' or in (0, 100]")
        return v


class Supervised(BaseModel):
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)


class Method(BaseModel):
    type: Literal["supervised"] = "supervised"
    supervised: Supervised = Field(default_factory=Supervised)


class LoraOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    r: int | None = Field(default=None, ge=1, le=512)
    alpha: int | None = Field(default=None, ge=1, le=4096)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    target_modules: list[str] | None = None


class SafetyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    realign: Literal["auto", "keel", "repair", "nlsr", "fgsn", "safelora", "none"] = "auto"


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str
    training_file: str
    validation_file: str | None = None
    hyperparameters: Hyperparameters | None = None  # deprecated by OpenAI in favour of method
    method: Method | None = None
    suffix: str | None = Field(default=None, min_length=1, max_length=64)
    seed: int | None = Field(default=None, ge=0, le=2147483647)
    metadata: dict[str, str] | None = None
    integrations: list[dict] | None = None
    lora: LoraOptions = Field(default_factory=LoraOptions)
    safety: SafetyOptions = Field(default_factory=SafetyOptions)
    dry_run: bool = False

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, v):  # noqa: ANN001, ANN206
        if v is None:
            return v
        if len(v) > 16 or any(len(k) > 64 or len(val) > 512 for k, val in v.items()):
            raise ValueError("metadata: at most 16 pairs, keys up to 64 and values up to 512 characters")
        return v

    def requested_hyperparameters(self) -> Hyperparameters:
        if self.method is not None:
            return self.method.supervised.hyperparameters
        return self.hyperparameters or Hyperparameters()


class BaseModelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:/-]+$")
    path: str
    alignment_adapter: str | None = None
    chat_template: str | None = None
    context_length: int = Field(default=2048, ge=16)
    safety_data: dict[str, str] = Field(default_factory=dict)


class MaskCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal["all", "nlsr", "sn_tune", "fgsn"] = "all"
    config: dict = Field(default_factory=dict)
    corpus_file: str | None = None


class TenantCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    role: Literal["user", "admin"] = "user"
