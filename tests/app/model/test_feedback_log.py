"""The feedback log is append-only and crash-safe; labels are derived from it as documented
(latest verdict wins; only reviewed images; the training loader reads the result)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from chexnet.app.model.feedback_labels import fold, label_rows, labels_csv, write_labels
from chexnet.app.model.feedback_log import append_event, encode, image_key, read_events
from chexnet.training.data.labels import read_label_file

WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from chexnet.app.model.feedback_log import append_event

    log = Path(sys.argv[1])
    i = 0
    while True:
        append_event(log, {"event": "note", "image": {"path": "/x.png"}, "seq": i,
                           "note": "n" * 20000})
        print(i, flush=True)  # the acknowledgement: append_event has returned
        i += 1
""")


def test_a_kill_mid_write_loses_no_acknowledged_event(tmp_path):
    """SIGKILL a writer at full speed: every event whose append returned is in the log, and
    the log reads line by line (a torn last line is skipped by the reader, and the next
    append starts on a fresh line)."""
    log = tmp_path / "feedback" / "feedback.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(log)], stdout=subprocess.PIPE,
                            text=True, cwd=Path(__file__).resolve().parents[3])
    acknowledged = []
    for line in proc.stdout:
        acknowledged.append(int(line))
        if len(acknowledged) == 40:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    content = read_events(log)
    seen = [e["seq"] for e in content.events]
    assert set(acknowledged) <= set(seen)
    assert seen == list(range(len(seen)))  # in order, none lost, none twice
    assert content.skipped_lines <= 1  # at most the line being written when killed

    append_event(log, {"event": "note", "image": {"path": "/x.png"}, "seq": "after"})
    after = read_events(log)
    assert after.events[-1]["seq"] == "after"
    assert after.skipped_lines == content.skipped_lines


def test_a_torn_last_line_is_skipped_and_ended_before_the_next_event(tmp_path):
    log = tmp_path / "feedback.jsonl"
    first = {"event": "reviewed", "image": {"path": "/a.png"}, "model_calls": {"Mass": 1}}
    append_event(log, first)
    with open(log, "ab") as fh:
        fh.write(encode({"event": "note", "image": {"path": "/a.png"}})[:17])  # torn
    assert read_events(log).events == [first]
    assert read_events(log).skipped_lines == 1
    second = {"event": "unreviewed", "image": {"path": "/a.png"}}
    append_event(log, second)
    assert read_events(log).events == [first, second]
    lines = log.read_bytes().splitlines()
    assert len(lines) == 3
    assert json.loads(lines[2]) == second


def verdict(path: str, label: str, said: str, above: bool) -> dict:
    return {"event": "finding", "image": {"path": path, "sop_instance_uid": None},
            "finding": label, "verdict": said, "above_threshold": above}


def reviewed(path: str, calls: dict[str, int], uid: str | None = None) -> dict:
    return {"event": "reviewed", "image": {"path": path, "sop_instance_uid": uid},
            "model_calls": calls}


def test_labels_latest_verdict_wins_and_only_reviewed_images(tmp_path):
    calls = {"Effusion": 1, "Mass": 0, "Nodule": 0, "Hernia": 1}
    a, b, c = str(tmp_path / "a.png"), str(tmp_path / "b.png"), str(tmp_path / "c.png")
    events = [
        verdict(a, "Effusion", "disagree", True),   # above, disagree -> 0
        verdict(a, "Effusion", "agree", True),      # changed mind: above, agree -> 1
        verdict(a, "Mass", "missed", False),        # missed -> 1
        verdict(a, "Nodule", "agree", False),       # below, agree -> 0
        verdict(a, "Hernia", "disagree", True),     # -> 0 ...
        verdict(a, "Hernia", "cleared", True),      # ... taken back: the model's call, 1
        reviewed(a, calls),
        verdict(b, "Nodule", "disagree", False),    # below, disagree -> 1
        reviewed(b, calls),
        verdict(c, "Mass", "missed", False),        # never marked reviewed: left out
        reviewed(c, calls), {"event": "unreviewed", "image": {"path": c}},
    ]
    table = label_rows(fold(events))
    assert table.labels == ("Effusion", "Mass", "Nodule", "Hernia")
    assert table.rows == [(a, [1, 1, 0, 1]), (b, [1, 0, 1, 1])]
    assert table.not_reviewed == 1
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text(labels_csv(table), encoding="utf-8")
    loaded = read_label_file(csv_path)
    assert loaded.ids == (a, b)
    assert loaded.labels == table.labels
    assert loaded.y.tolist() == [[1, 1, 0, 1], [1, 0, 1, 1]]


def test_a_dicom_is_one_image_by_its_uid_and_no_csv_without_a_reviewed_image(tmp_path):
    log = tmp_path / "feedback.jsonl"
    append_event(log, verdict("/x/one.dcm", "Mass", "missed", False))
    assert write_labels(log, tmp_path / "labels.csv").rows == []
    assert not (tmp_path / "labels.csv").exists()  # the loader would refuse an empty table
    append_event(log, reviewed("/y/copy.dcm", {"Mass": 0, "Hernia": 1}, uid="1.2.3"))
    append_event(log, reviewed("/z/other.dcm", {"Mass": 0, "Hernia": 1}, uid="1.2.3"))
    table = write_labels(log, tmp_path / "labels.csv")
    assert table.rows == [("/z/other.dcm", [0, 1])]  # one image, its latest path
    assert image_key("/y/copy.dcm", "1.2.3") == image_key("/z/other.dcm", "1.2.3")
    assert image_key("a.png", None) == image_key(os.path.abspath("a.png"), None)
