"""The screening journal ``results.jsonl``: append-only, one JSON object per line, fsynced.

Line 1 is the run header (model name, version, sha256, labels, thresholds, whether PHI is
recorded); every later line is one image's result. A run killed at any moment (kill -9, power
loss) leaves at worst a torn last line: it is ignored when read, cut off before the next append,
and its image is screened again. When a path appears twice (``--retry-failed`` re-runs errors),
the last line wins. Everything the worklist shows (``results.csv``, ``report.html``) is derived
from this file and can be rebuilt from it at any time.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from chexnet.inference.atomic_file import write_atomic

JOURNAL_NAME = "results.jsonl"
SCHEMA = 1


@dataclass
class JournalContent:
    header: dict | None
    records: dict[str, dict] = field(default_factory=dict)  # path -> last record, in order
    valid_bytes: int = 0  # length of the complete lines; anything after is a torn write
    torn_lines: int = 0


def read_journal(path: Path) -> JournalContent:
    """Parse a journal; a missing file is an empty journal, torn or garbled lines are skipped."""
    if not path.is_file():
        return JournalContent(None)
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1  # bytes after the last newline are a torn write
    content = JournalContent(None, valid_bytes=end, torn_lines=int(end < len(data)))
    for n, line in enumerate(data[:end].splitlines()):
        try:
            obj = json.loads(line)
        except ValueError:
            content.torn_lines += 1
            continue
        if n == 0:
            if isinstance(obj, dict) and obj.get("type") == "header":
                content.header = obj
                continue
            return JournalContent(None, valid_bytes=0)  # not our file's first line
        if isinstance(obj, dict) and obj.get("type") == "row" and "path" in obj:
            content.records.pop(obj["path"], None)  # last wins, and moves to the end
            content.records[obj["path"]] = obj
    if content.header is None:
        content.valid_bytes = 0
    return content


class JournalWriter:
    """Appends result lines; each :meth:`append` is flushed and fsynced before it returns."""

    def __init__(self, path: Path, header: dict, *, keep_bytes: int = 0) -> None:
        self.path = path
        if keep_bytes:  # resuming: drop a torn tail so the next line starts on a fresh line
            with open(path, "r+b") as fh:
                fh.truncate(keep_bytes)
            self._fh = open(path, "ab")  # noqa: SIM115 - closed by close()
        else:
            write_atomic(path, _line({**header, "type": "header", "schema": SCHEMA}),
                         sync_dir=True)
            self._fh = open(path, "ab")  # noqa: SIM115 - closed by close()

    def append(self, records: list[dict]) -> None:
        if not records:
            return
        self._fh.write(b"".join(_line({**r, "type": "row"}) for r in records))
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _line(obj: dict) -> bytes:
    return (json.dumps(obj, ensure_ascii=True, separators=(",", ":")) + "\n").encode("ascii")
