"""File statuses (OpenAI's values) and purposes."""

from __future__ import annotations

from enum import StrEnum


class FileStatus(StrEnum):
    PROCESSED = "processed"
    ERROR = "error"


class Purpose(StrEnum):
    FINE_TUNE = "fine-tune"
    SAFETY_CORPUS = "safety-corpus"
