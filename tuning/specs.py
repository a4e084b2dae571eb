"""Frozen, validated specs that cross the boundary between the worker and the pure ML code."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from tuning.plan import DEFAULT_MICRO_BATCH_TOKENS

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class LoraSpec:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: tuple[str, ...] = DEFAULT_TARGETS

    def __post_init__(self) -> None:
        if self.r < 1 or self.alpha <= 0 or not 0.0 <= self.dropout < 1.0 or not self.target_modules:
            raise ValueError(f"invalid LoRA spec: {self}")

    @property
    def scale(self) -> float:
        return self.alpha / self.r


EXECUTION_FIELDS = ("micro_batch_tokens", "emulate_cuda_path")
"""TrainSpec fields that say how a batch is computed, not what: left out of checkpoint fingerprints and cache keys."""


def result_fields(spec: TrainSpec) -> dict:
    """The spec's fields that determine the trained result (all but :data:`EXECUTION_FIELDS`)."""
    return {k: v for k, v in asdict(spec).items() if k not in EXECUTION_FIELDS}


@dataclass(frozen=True)
class TrainSpec:
    n_epochs: int = 3
    batch_size: int = 8
    learning_rate: float = 2e-4
    seed: int = 0
    max_seq_len: int = 512
    checkpoint_every: int = 50  # optimizer steps; 0 disables intermediate checkpoints
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    lr_scheduler: str = "cosine"  # or "constant"
    # How the batch is computed, not what it computes: neither is part of a checkpoint's fingerprint, so a run
    # may resume with a smaller budget (the OOM retry) or under the other code path.
    micro_batch_tokens: int = DEFAULT_MICRO_BATCH_TOKENS  # tokens per forward/backward (gradient accumulation)
    emulate_cuda_path: bool = False  # tests only: take the CUDA branches of the trainer on the CPU

    def __post_init__(self) -> None:
        if self.n_epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0 or self.max_seq_len < 8:
            raise ValueError(f"invalid train spec: {self}")
        if self.micro_batch_tokens < 1:
            raise ValueError(f"invalid train spec: micro_batch_tokens must be >= 1 ({self.micro_batch_tokens})")


@dataclass(frozen=True)
class TrainResult:
    adapter_dir: str
    steps: int
    trained_tokens: int
    final_loss: float  # NaN only for a run cancelled before its first step (no loss read yet)
    wall_s: float
    resumed_from_step: int = 0
    cancelled: bool = False
    metrics: dict = field(default_factory=dict)
