"""Radiologist files and the model-vs-readers comparison; the real NIH expert-label set."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image as PILImage
from sklearn.metrics import roc_auc_score

from chexnet.inference.cli.main import main
from chexnet.training.data.labels import LabelFileError
from chexnet.training.evaluation.radiologist_reads import (
    canonical_label,
    compare_readers,
    majority_vote,
    read_individual_readers,
    read_reader_labels,
)
from tests.conftest import SHARED
from tests.training.helpers import write_csv

NIH_READERS = SHARED / "data" / "nih14-readers"
PANEL = ("4343882785", "4343883593", "4343883996")


@pytest.fixture(scope="session")
def nih14_readers() -> Path:
    if not (NIH_READERS / "test_individual_readers.csv").is_file():
        pytest.skip(f"NIH expert reads not found at {NIH_READERS} (the shared data folder is "
                    "absent)")
    return NIH_READERS


def test_canonical_label_spellings():
    assert canonical_label("Pleural Thickening") == "Pleural_Thickening"
    assert canonical_label("pleural_thickening ") == "Pleural_Thickening"
    assert canonical_label("Other") == "Other"
    # other names are never renamed to an NIH name (a custom label keeps its own)
    assert canonical_label("pleural effusion") == "pleural effusion"
    assert canonical_label("Infiltrate") == "Infiltrate"


def test_read_reader_labels_yes_no(tmp_path):
    path = write_csv(tmp_path / "labels.csv", [
        ["Image ID", "Patient ID", "Effusion", "Pleural Thickening"],
        ["a.png", "1", "YES", "NO"], ["b.png", "1", "NO", "YES"], ["c.png", "2", "no", "no"]])
    table = read_reader_labels(path)
    assert table.labels == ("Effusion", "Pleural_Thickening")
    assert table.ids == ("a.png", "b.png", "c.png")
    assert table.patients == ("1", "1", "2")
    assert table.y.tolist() == [[1, 0], [0, 1], [0, 0]]


def test_read_reader_labels_bad_value_names_file_and_line(tmp_path):
    path = write_csv(tmp_path / "labels.csv", [["Image ID", "Patient ID", "Effusion"],
                                               ["a.png", "1", "maybe"]])
    with pytest.raises(LabelFileError) as err:
        read_reader_labels(path)
    message = str(err.value)
    assert "\n" not in message
    assert "labels.csv: line 2: finding values must be YES or NO" in message


def test_individual_readers_and_majority(tmp_path):
    path = write_csv(tmp_path / "readers.csv", [
        ["Image ID", "Patient ID", "Reader ID", "Mass"],
        ["a.png", "1", "r1", "YES"], ["a.png", "1", "r2", "YES"], ["a.png", "1", "r3", "NO"],
        ["b.png", "2", "r1", "NO"], ["b.png", "2", "r2", "YES"]])  # r3 did not read b
    table = read_individual_readers(path)
    assert table.readers == ("r1", "r2", "r3")
    assert table.votes[:, :, 0].tolist() == [[1, 0], [1, 1], [0, -1]]
    truth, ties = majority_vote(table.votes)
    assert truth[:, 0].tolist() == [1, 0]   # 2 of 3 yes; 1 of 2 is a tie -> absent
    assert ties[:, 0].tolist() == [False, True]


def test_compare_readers_leave_one_out_and_panel_by_hand():
    # 3 readers, 6 images (one patient each), one finding
    votes = np.array([[1, 1, 0, 0, 1, 0],    # r1
                      [1, 1, 0, 0, 0, 0],    # r2
                      [1, 0, 0, 1, 0, 0]],   # r3
                     dtype=np.int8)[:, :, None]
    probs = np.array([0.9, 0.8, 0.1, 0.2, 0.7, 0.3])[:, None]
    patients = [str(i) for i in range(6)]
    loo = compare_readers(votes, ["r1", "r2", "r3"], ["Mass"], probs, np.array([0.5]), patients,
                          n_resamples=200).summary["per_finding"]["Mass"]
    # r1 against majority(r2, r3) = [1, 0, 0, 0, 0, 0] (ties absent): tp 1, fp 2 -> F1 0.5
    assert loo["readers"]["r1"]["f1"] == pytest.approx(0.5)
    assert loo["readers"]["r1"]["ties"] == 2
    # the model (calls images 0, 1, 4) against the same truth: tp 1, fp 2 -> 0.5
    assert loo["model_by_truth"]["r1"]["f1"] == pytest.approx(0.5)
    panel = compare_readers(votes, ["r1", "r2", "r3"], ["Mass"], probs, np.array([0.5]),
                            patients, panel=["r2", "r3"], n_resamples=200).summary
    assert panel["comparison_readers"] == ["r1"]
    entry = panel["per_finding"]["Mass"]
    # truth = majority(r2, r3) again; r1 and the model both score F1 0.5 -> difference 0
    assert entry["f1_difference"] == pytest.approx(0.0)
    lo, hi = entry["f1_difference_ci"]
    assert lo <= 0.0 <= hi


def _independent_aurocs(folder: Path) -> dict[str, float]:
    """AUROC per finding from the two CSVs, joined here by image name, with scikit-learn."""
    with open(folder / "test_labels.csv", newline="") as fh:
        truth = {r["Image ID"]: r for r in csv.DictReader(fh)}
    with open(folder / "reference_predictions.csv", newline="") as fh:
        preds = list(csv.DictReader(fh))
    out = {}
    for column in preds[0]:
        if column == "Image Index":
            continue
        label_column = column.replace("_", " ")
        y = [truth[p["Image Index"]][label_column] == "YES" for p in preds]
        if 0 < sum(y) < len(y):
            out[column] = roc_auc_score(y, [float(p[column]) for p in preds])
    return out


def _coloured_pixels(png: Path) -> int:
    rgb = np.asarray(PILImage.open(png).convert("RGB")).astype(int)
    spread = rgb.max(axis=2) - rgb.min(axis=2)
    return int((spread > 60).sum())


def test_real_readers_eval(nih14_readers, tmp_path, capsys):
    out = tmp_path / "eval"
    rc = main(["eval", "--predictions", str(nih14_readers / "reference_predictions.csv"),
               "--labels", str(nih14_readers / "test_labels.csv"),
               "--readers", str(nih14_readers / "test_individual_readers.csv"),
               "--panel", ",".join(PANEL), "--out", str(out)])
    assert rc == 0
    stdout = capsys.readouterr().out
    assert "622 labelled image(s) have no prediction" in stdout
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_images"] == 188
    expected = _independent_aurocs(nih14_readers)
    for label, auc in expected.items():
        assert m["per_class"][label]["auroc"] == pytest.approx(auc, abs=1e-9), label
    # the figures SOURCE.md quotes
    for label, auc in {"Cardiomegaly": 0.97, "Effusion": 0.90, "Pneumothorax": 0.93,
                       "Mass": 0.95}.items():
        assert m["per_class"][label]["auroc"] == pytest.approx(auc, abs=0.005)
    pneumonia = m["per_class"]["Pneumonia"]
    assert (pneumonia["auroc"], pneumonia["auroc_reason"]) == (None, "no positive images")
    assert m["mean_auroc"] == pytest.approx(np.mean(list(expected.values())), abs=1e-9)
    assert m["mean_auroc_excluded"] == {"Pneumonia": "no positive images"}
    for label in ("Emphysema", "Fibrosis", "Hernia"):
        assert m["per_class"][label]["n_positive"] == 2
    lo, hi = m["per_class"]["Cardiomegaly"]["auroc_ci"]
    assert lo < m["per_class"]["Cardiomegaly"]["auroc"] < hi

    r = json.loads((out / "readers.json").read_text())
    assert r["mode"] == "panel"
    assert sorted(r["comparison_readers"]) == ["4343880271", "4343882583"]
    assert r["panel_vs_labels"]["agree"] == r["panel_vs_labels"]["total"]
    for label, entry in r["per_finding"].items():
        assert sorted(entry["readers"]) == ["4343880271", "4343882583"], label
        for stats in entry["readers"].values():
            assert stats["specificity"] is not None
            assert (stats["sensitivity"] is None) == (label == "Pneumonia")
    effusion = r["per_finding"]["Effusion"]
    assert effusion["n_positive"] == m["per_class"]["Effusion"]["n_positive"]
    lo, hi = effusion["f1_difference_ci"]
    assert lo <= effusion["f1_difference"] <= hi

    for label in ("Effusion", "Cardiomegaly"):
        assert _coloured_pixels(out / "readers_roc" / f"{label}.png") > 200
    assert _coloured_pixels(out / "roc" / "Pleural_Thickening.png") > 200
    assert (out / "roc_grid.png").is_file()
    report = (out / "report.md").read_text()
    for text in ("Mean AUROC", "indicative only", "4343882583", "Pneumonia (no positive images)",
                 "Per-image average precision", "Top-3 sensitivity", "Normal vs abnormal"):
        assert text in report


def _reader_figures(monkeypatch) -> dict[str, Figure]:
    """The reader ROC figures eval saves, by file stem (captured as they are saved)."""
    saved: dict[str, Figure] = {}
    real = Figure.savefig

    def keep(fig, fname, *args, **kwargs):
        if Path(fname).parent.name == "readers_roc":
            saved[Path(fname).stem] = fig
        return real(fig, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    return saved


def _model_points(fig: Figure) -> tuple[list[tuple[float, float]], list[str]]:
    ax = fig.axes[0]
    stars = [(float(ln.get_xdata()[0]), float(ln.get_ydata()[0])) for ln in ax.lines
             if ln.get_marker() == "*"]
    return stars, [t.get_text() for t in ax.get_legend().get_texts()]


def test_reader_rocs_mark_the_models_operating_point(nih14_readers, tmp_path, monkeypatch):
    saved = _reader_figures(monkeypatch)
    out = tmp_path / "panel"
    assert main(["eval", "--predictions", str(nih14_readers / "reference_predictions.csv"),
                 "--labels", str(nih14_readers / "test_labels.csv"),
                 "--readers", str(nih14_readers / "test_individual_readers.csv"),
                 "--panel", ",".join(PANEL), "--bootstrap", "0", "--out", str(out)]) == 0
    r = json.loads((out / "readers.json").read_text())
    model = r["per_finding"]["Cardiomegaly"]["model"]
    stars, legend = _model_points(saved["Cardiomegaly"])
    assert stars == [pytest.approx((1 - model["specificity"], model["sensitivity"]))]
    threshold = r["per_finding"]["Cardiomegaly"]["threshold"]
    assert f"model at its threshold {threshold:.3g}" in legend


def test_real_readers_leave_one_out(nih14_readers, tmp_path, monkeypatch):
    saved = _reader_figures(monkeypatch)
    out = tmp_path / "eval"
    rc = main(["eval", "--predictions", str(nih14_readers / "reference_predictions.csv"),
               "--labels", str(nih14_readers / "test_labels.csv"),
               "--readers", str(nih14_readers / "test_individual_readers.csv"),
               "--bootstrap", "100", "--out", str(out)])
    assert rc == 0
    r = json.loads((out / "readers.json").read_text())
    assert r["mode"] == "leave_one_out"
    assert len(r["comparison_readers"]) == 5
    entry = r["per_finding"]["Mass"]
    assert sorted(entry["model_by_truth"]) == sorted(r["comparison_readers"])
    # one operating point of the model per truth (curve), one legend entry for them
    stars, legend = _model_points(saved["Mass"])
    want = [(1 - s["specificity"], s["sensitivity"]) for s in entry["model_by_truth"].values()
            if s["specificity"] is not None and s["sensitivity"] is not None]
    assert np.allclose(sorted(stars), sorted(want))
    assert sum(text.startswith("model at its threshold") for text in legend) == 1


def test_unknown_panel_reader_is_a_usage_error(nih14_readers, tmp_path, capsys):
    rc = main(["eval", "--predictions", str(nih14_readers / "reference_predictions.csv"),
               "--labels", str(nih14_readers / "test_labels.csv"),
               "--readers", str(nih14_readers / "test_individual_readers.csv"),
               "--panel", "123,4343882785", "--bootstrap", "0", "--out", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "test_individual_readers.csv: --panel reader(s) ['123']" in err
