"""Kinds of stored job artifacts and the downloadable adapter variants."""

from __future__ import annotations

from enum import StrEnum


class ArtifactKind(StrEnum):
    ADAPTER = "adapter"
    ADAPTER_RAW = "adapter_raw"
    REPORT_PLOT = "report_plot"


VARIANTS = {"realigned": ArtifactKind.ADAPTER, "raw": ArtifactKind.ADAPTER_RAW}
