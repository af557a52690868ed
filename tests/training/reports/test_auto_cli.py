"""``chexnet labels-from-reports --auto``: reports -> labels.csv (1/0/-1) and
unmatched_clauses.csv in one step, read back by chexnet-train's reader, trained on with -1
labels under each --uncertain policy."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from chexnet.inference.package.card import CHESTXRAY14_LABELS
from chexnet.training.data.labels import read_generic_csv
from chexnet.training.reports.realistic import generate_realistic
from tests.training.reports.helpers import read_csv, run, train_smoke

SECRET = "Patient Zhang San"  # text that must never reach stdout/stderr
EXTRA = [
    "",  # empty
    f"{SECRET} catheter tip in the SVC.",  # names nothing the vocabulary knows
    "=HYPERLINK(\"http://x\") pacemaker leads intact. No pneumothorax.",  # formula-like text
]


def write_reports(folder: Path, reports: list[str], image_for) -> Path:
    path = folder / "reports.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "patient_id", "impression"])
        for i, report in enumerate(reports):
            w.writerow([image_for(i), f"P{i // 2:04d}", report])
    return path


@pytest.fixture(scope="module")
def corpus():
    return generate_realistic(400, seed=21)


def test_auto_writes_labels_with_uncertain_values_and_unmatched_clusters(tmp_path, capsys,
                                                                         corpus):
    reports = [*corpus.reports, *EXTRA]
    csv_path = write_reports(tmp_path, reports, lambda i: f"images/img_{i:04d}.png")
    out = tmp_path / "labels"
    code, text, err = run(capsys, csv_path, "--out", out, "--auto")
    assert code == 0, err
    assert SECRET not in text + err
    assert "HYPERLINK" not in text + err
    table = read_generic_csv(out / "labels.csv")
    assert table.labels == (*CHESTXRAY14_LABELS, "normal")
    assert table.y.dtype == np.int8
    assert set(np.unique(table.y)) == {-1, 0, 1}
    n = len(corpus.reports)
    by_name = {Path(p).name: y for p, y in zip(table.ids, table.y, strict=True)}
    # every labelled generated report agrees with its planted truth on most findings
    agree = [np.mean([by_name[f"img_{i:04d}.png"][j] == t[lb]
                      for j, lb in enumerate(CHESTXRAY14_LABELS)])
             for i, t in enumerate(corpus.truth) if f"img_{i:04d}.png" in by_name]
    assert len(agree) >= 0.95 * n
    assert np.mean(agree) >= 0.98
    left_out = {Path(r["image"]).name: r["reason"] for r in read_csv(out / "unlabelled.csv")}
    assert left_out[f"img_{n:04d}.png"] == "empty report"
    assert "names nothing" in left_out[f"img_{n + 1:04d}.png"]
    assert by_name[f"img_{n + 2:04d}.png"][CHESTXRAY14_LABELS.index("Pneumothorax")] == 0
    assert len(table) + len(left_out) == len(reports)
    rows = read_csv(out / "unmatched_clauses.csv")
    assert [int(r["reports"]) for r in rows] == sorted((int(r["reports"]) for r in rows),
                                                       reverse=True)
    cells = [c for r in rows for c in (r["medoid"], r["examples"])]
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)  # neutralised

    # --uncertain as-positive / as-negative: the -1 values become 1 / 0, nothing else changes
    for mode, value in (("as-positive", 1), ("as-negative", 0)):
        alt = tmp_path / mode
        assert run(capsys, csv_path, "--out", alt, "--auto", "--uncertain", mode)[0] == 0
        other = read_generic_csv(alt / "labels.csv")
        expected = np.where(table.y == -1, value, table.y)
        np.testing.assert_array_equal(other.y, expected)


def test_vocabulary_file_and_bad_combinations(tmp_path, capsys):
    csv_path = write_reports(tmp_path, ["Right rib fracture. No effusion.", "骨折。"],
                             lambda i: f"img_{i}.png")
    words = tmp_path / "words.csv"
    words.write_text("label,term\nFracture,rib fracture\nFracture,骨折\n", encoding="utf-8")
    out = tmp_path / "out"
    assert run(capsys, csv_path, "--out", out, "--auto", "--vocabulary", words)[0] == 0
    table = read_generic_csv(out / "labels.csv")
    assert table.labels[-1] == "Fracture"
    np.testing.assert_array_equal(table.y[:, -1], [1, 1])
    code, _, err = run(capsys, csv_path, "--out", out, "--auto", "--apply-map", words)
    assert code != 0
    assert "--auto" in err
    code, _, err = run(capsys, csv_path, "--out", out, "--auto", "--vocabulary",
                       tmp_path / "missing.csv")
    assert code != 0
    assert "missing.csv" in err


def test_report_text_in_unmatched_clauses_is_neutralised(tmp_path, capsys):
    csv_path = write_reports(tmp_path, ["=cmd|' /C calc'!A0 device. No effusion.",
                                        "+1 leads intact. No effusion.", "No effusion."],
                             lambda i: f"img_{i}.png")
    assert run(capsys, csv_path, "--out", tmp_path / "out", "--auto")[0] == 0
    rows = read_csv(tmp_path / "out" / "unmatched_clauses.csv")
    assert sorted(r["medoid"] for r in rows) == ["'+ leads intact", "'=cmd|' /c calc'"]


def test_chexnet_train_trains_on_uncertain_labels(tmp_path, capsys, corpus, nih_sample):
    """U-Ignore end to end (U-Ones / U-Zeros rewrite the table: tests/training/data)."""
    policy = "ignore"
    pytest.importorskip("torch", reason="training extra (torch) not installed")

    pngs = sorted((nih_sample / "images").glob("*.png"))[:40]
    hedged = [i for i, t in enumerate(corpus.truth) if -1 in t.values()][:20]
    other = [i for i in range(len(corpus.reports)) if i not in hedged][:20]
    reports = [corpus.reports[i] for i in hedged + other]
    csv_path = write_reports(tmp_path, reports, lambda i: str(pngs[i]))
    out = tmp_path / "labels"
    assert run(capsys, csv_path, "--out", out, "--auto")[0] == 0
    assert (read_generic_csv(out / "labels.csv").y == -1).any()
    info = train_smoke(capsys, out / "labels.csv", tmp_path, "--uncertain", policy)
    assert info["status"] == "finished"
    assert info["config"]["uncertain"] == policy
