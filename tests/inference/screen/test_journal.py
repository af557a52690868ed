"""The screening journal survives a kill at any byte: torn lines are ignored and cut off before
the next append, the last line for a path wins, and the header is what resumption checks."""

from __future__ import annotations

import json

from chexnet.inference.screen.journal import JournalWriter, read_journal

HEADER = {"model": {"name": "m", "version": "1", "sha256": "ab" * 32, "demo": True},
          "labels": ["A", "B"], "thresholds": [0.5, 0.5]}


def rows(*names: str, status: str = "ok") -> list[dict]:
    return [{"path": f"/data/{n}", "status": status, "probabilities": [0.1, 0.9]}
            for n in names]


def test_round_trip_and_last_line_wins(tmp_path):
    path = tmp_path / "results.jsonl"
    with JournalWriter(path, HEADER) as w:
        w.append(rows("a", "b"))
        w.append(rows("a", status="error"))
    content = read_journal(path)
    assert content.header["model"]["sha256"] == "ab" * 32
    assert list(content.records) == ["/data/b", "/data/a"]  # a moved to where it was re-run
    assert content.records["/data/a"]["status"] == "error"
    assert content.valid_bytes == path.stat().st_size
    assert content.torn_lines == 0


def test_every_torn_tail_is_ignored_and_cut_before_appending(tmp_path):
    path = tmp_path / "results.jsonl"
    with JournalWriter(path, HEADER) as w:
        w.append(rows("a", "b", "c"))
    full = path.read_bytes()
    header_end = full.index(b"\n") + 1
    line_ends = [i + 1 for i, ch in enumerate(full) if ch == ord("\n")]
    for cut in range(header_end, len(full)):  # a kill after any byte of the rows
        path.write_bytes(full[:cut])
        content = read_journal(path)
        complete = sum(end <= cut for end in line_ends) - 1  # minus the header line
        assert len(content.records) == complete, cut
        assert content.valid_bytes == max(e for e in line_ends if e <= cut)
        with JournalWriter(path, HEADER, keep_bytes=content.valid_bytes) as w:
            w.append(rows("z"))
        again = read_journal(path)
        assert again.torn_lines == 0
        assert len(again.records) == complete + 1
        assert "/data/z" in again.records


def test_a_file_that_is_not_a_journal_has_no_header(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps({"path": "/x", "status": "ok"}) + "\n")
    assert read_journal(path).header is None
    path.write_bytes(b'{"type": "header", "mod')  # killed while writing the header
    assert read_journal(path).header is None
    assert read_journal(tmp_path / "missing.jsonl").header is None
