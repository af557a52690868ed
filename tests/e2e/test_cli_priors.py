"""Comparison with priors as a user runs it, on real NIH PNGs: a Data_Entry-format CSV declares
three of them one patient's follow-ups (the shared sample holds one image per patient); the
priors follow the Follow-up #, and the deltas of `predict --prior` and of `screen` equal the
difference of two independent `chexnet predict` results."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from chexnet.inference.cli.main import main

#: name -> Follow-up # (patient 4242); 00000211_000.png is its patient's only image.
FOLLOW_UPS = {"00000075_000.png": 2, "00000100_000.png": 0, "00000129_000.png": 1}
OTHER = "00000211_000.png"


@pytest.fixture(scope="module")
def dataset(nih_sample: Path, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("nih_follow_ups")
    with open(folder / "Data_Entry_2017.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Image Index", "Finding Labels", "Follow-up #", "Patient ID"])
        for name, follow_up in [*FOLLOW_UPS.items(), (OTHER, 0)]:
            w.writerow([name, "No Finding", follow_up, "211" if name == OTHER else "4242"])
            (folder / "images").mkdir(exist_ok=True)
            (folder / "images" / name).symlink_to(nih_sample / "images" / name)
    return folder / "images"  # the NIH layout: the CSV beside the images folder


def _predict(args: list[str], capsys) -> dict:
    assert main(["predict", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _probs(doc: dict) -> dict[str, float]:
    return {f["label"]: f["probability"] for f in doc["results"][0]["findings"]}


def test_predict_prior_equals_two_predict_runs(dataset, tiny_model, capsys) -> None:
    model = ["--model", str(tiny_model)]
    now = _probs(_predict([str(dataset / "00000075_000.png"), *model], capsys))
    before = _probs(_predict([str(dataset / "00000129_000.png"), *model], capsys))
    doc = _predict([str(dataset / "00000075_000.png"), "--prior",
                    str(dataset / "00000129_000.png"), *model], capsys)
    rows = {r["label"]: r for r in doc["comparison"]["findings"]}
    assert set(rows) == set(now)
    for label, row in rows.items():
        assert row["delta"] == pytest.approx(now[label] - before[label], abs=2e-6)
        assert row["before"] == pytest.approx(before[label], abs=1e-6)
    assert main(["predict", str(dataset / "00000075_000.png"), "--prior",
                 str(dataset / "00000129_000.png"), *model]) == 0
    text = capsys.readouterr().out
    assert "compared with prior" in text
    assert any(arrow in text for arrow in "↑↓")


def test_screen_follow_ups_in_order_with_deltas(dataset, tiny_model, tmp_path, capsys) -> None:
    model = ["--model", str(tiny_model)]
    probs = {name: _probs(_predict([str(dataset / name), *model], capsys))
             for name in FOLLOW_UPS}
    out = tmp_path / "out"
    assert main(["screen", str(dataset), "--out", str(out), "--workers", "2", *model]) == 0
    capsys.readouterr()
    rows = {Path(r["path"]).name: r
            for r in csv.DictReader(io.StringIO((out / "results.csv").read_text()))}
    prior_of = {name: Path(r["prior_path"]).name for name, r in rows.items()
                if r["prior_path"]}
    # follow-up 2's prior is follow-up 1, whose prior is follow-up 0
    assert prior_of == {"00000075_000.png": "00000129_000.png",
                        "00000129_000.png": "00000100_000.png"}
    assert rows["00000100_000.png"]["prior_reason"] == "no earlier study of this patient"
    assert rows[OTHER]["prior_reason"] == "no earlier study of this patient"
    assert rows["00000075_000.png"]["prior_interval_days"] == ""  # follow-ups are not days
    for name, prior in prior_of.items():
        for label in probs[name]:
            assert float(rows[name][f"delta_{label}"]) == pytest.approx(
                probs[name][label] - probs[prior][label], abs=3e-6)
    assert "4242" not in (out / "results.csv").read_text()
    html = (out / "report.html").read_text()
    # the caption of a follow-up's prior: no date, the count of follow-ups between
    assert html.count("prior: 1 follow-up earlier<") == 2
    assert "follow-up 1 ·" not in html  # the follow-up number itself: --include-phi only


def test_screen_caption_with_phi(dataset, tiny_model, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["screen", str(dataset), "--out", str(out), "--workers", "2", "--include-phi",
                 "--model", str(tiny_model)]) == 0
    capsys.readouterr()
    html = (out / "report.html").read_text()
    assert "prior: follow-up 1 · 1 follow-up earlier<" in html  # 00000075's prior
    assert "prior: follow-up 0 · 1 follow-up earlier<" in html  # 00000129's
    assert "; heat" not in html


def test_prior_that_cannot_be_read(dataset, tiny_model, tmp_path, capsys) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    code = main(["predict", str(dataset / OTHER), "--prior", str(bad), "--model",
                 str(tiny_model)])
    captured = capsys.readouterr()
    assert code == 1
    assert "no comparison" in captured.out
    assert "bad.png" in captured.err
    code = main(["predict", str(dataset / OTHER), "--prior", str(tmp_path / "gone.png"),
                 "--model", str(tiny_model)])
    captured = capsys.readouterr()
    assert code == 1
    assert "gone.png: no such file or folder" in captured.err
    assert "by its content" not in captured.err  # not called a file of the wrong kind


def test_predict_prior_takes_one_input(dataset, tiny_model, capsys) -> None:
    """One comparison table belongs to one image: several inputs with --prior are refused
    before anything is scored (not a table printed after the last image with the first's
    scores)."""
    code = main(["predict", str(dataset / "00000075_000.png"), str(dataset / OTHER),
                 "--prior", str(dataset / "00000129_000.png"), "--model", str(tiny_model)])
    captured = capsys.readouterr()
    assert code == 2
    assert "give one input, not 2" in captured.err
    assert "compared with prior" not in captured.out


def test_predict_prior_dicom_says_interval_and_other_patient(rg1_uncr, tiny_model, tmp_path,
                                                             capsys) -> None:
    from tests.inference.screen.prior_studies import rg1_study

    now = rg1_study(rg1_uncr, tmp_path / "now.dcm", variant=0, date="20200707")
    before = rg1_study(rg1_uncr, tmp_path / "before.dcm", variant=3, date="20190304")
    stranger = rg1_study(rg1_uncr, tmp_path / "s.dcm", variant=1, patient="PAT-9",
                         date="20190304")
    model = ["--model", str(tiny_model)]
    assert main(["predict", str(now), "--prior", str(before), *model]) == 0
    out = capsys.readouterr().out
    assert "(491 days earlier)" in out
    assert "2019-03-04" not in out  # the date only with --include-phi
    assert "warning" not in out.split("compared with prior")[1]
    doc = _predict([str(now), "--prior", str(before), "--include-phi", *model], capsys)
    assert doc["comparison"]["prior_date"] == "2019-03-04"
    assert doc["comparison"]["interval_days"] == 491
    assert main(["predict", str(now), "--prior", str(stranger), *model]) == 0
    out = capsys.readouterr().out
    assert "may be another patient" in out
    assert "PAT-9" not in out
    # the other way round: the "prior" is later; and a file given as its own prior
    assert main(["predict", str(before), "--prior", str(now), *model]) == 0
    out = capsys.readouterr().out.split("compared with prior")[1]
    assert "(491 days later)" in out
    assert "-491" not in out
    assert "not earlier" in out
    assert main(["predict", str(now), "--prior", str(now), *model]) == 0
    out = capsys.readouterr().out.split("compared with prior")[1]
    assert "(the same day)" in out
    assert "same study as the current image" in out
