"""File statuses (OpenAI's values) and purposes."""

from __future__ import annotations

from enum import StrEnum


class FileStatus(StrEnum):
    PROCESSED = "processed"
    ERROR = "error"


class Purpose(StrEnum):
    FINE_TUNE = "fine-tune"
    SAFETY_CORPUS = "safety-corpus"
    FINE_TUNE_RESULTS = "fine-tune-results"  # a job's realigned adapter bundle, listed in result_files


UPLOADABLE = (Purpose.FINE_TUNE, Purpose.SAFETY_CORPUS)
