"""TEMPORARY shim on main (replaced by the tuning restructure branch): torch-free row parsing."""

from tuning.data import RowError, count_tokens, normalize_row, parse_line

__all__ = ["RowError", "count_tokens", "normalize_row", "parse_line"]
