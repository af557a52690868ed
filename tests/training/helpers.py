"""Helpers that more than one module of tests/training uses."""

from __future__ import annotations

import csv
from pathlib import Path


def write_csv(path: Path, rows: list[list]) -> Path:
    """Write ``rows`` (the header first) as a CSV file and return its path."""
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return path
