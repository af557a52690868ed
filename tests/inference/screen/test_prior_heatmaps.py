"""The report's prior heat map shows the current row's finding: on real NIH PNGs declared one
patient's follow-ups 0/1/2 (the shared sample holds one image per patient), the prior heat map
in report.html equals an independent rendering of the prior's Engine CAM for that finding, and
stays so when the run is resumed; its caption reads well."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from chexnet.inference import Engine, load_image
from chexnet.inference.render.cam import normalise_cam
from chexnet.inference.screen.journal import JOURNAL_NAME, read_journal
from chexnet.inference.screen.pipeline import screen
from chexnet.inference.screen.prior_heatmaps import GRID_FIELD, grid_cam, grid_record
from tests.inference.screen.prior_studies import check_prior_heatmap, report_row

#: follow-up number of three NIH images, declared one patient's
FOLLOW_UPS = {"00000100_000.png": 0, "00000129_000.png": 1, "00000075_000.png": 2}


@pytest.fixture(scope="module")
def dataset(nih_sample: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("follow_ups")
    (root / "images").mkdir()
    with open(root / "Data_Entry_2017.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Image Index", "Finding Labels", "Follow-up #", "Patient ID"])
        for name, follow_up in FOLLOW_UPS.items():
            w.writerow([name, "No Finding", follow_up, "7"])
            (root / "images" / name).symlink_to(nih_sample / "images" / name)
    return root / "images"


@pytest.fixture(scope="module")
def run(dataset, tiny_model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out")
    screen([dataset], out, model=tiny_model, device="cpu", workers=2, priority="new")
    return out


def test_prior_heatmap_is_of_the_rows_finding(dataset, run, tiny_model) -> None:
    check_prior_heatmap(run, tiny_model, dataset / "00000075_000.png",
                         dataset / "00000129_000.png")
    check_prior_heatmap(run, tiny_model, dataset / "00000129_000.png",
                         dataset / "00000100_000.png")


def test_prior_caption(dataset, run) -> None:
    row = report_row(run, dataset / "00000075_000.png")
    assert '<span class="prior-caption">prior: 1 follow-up earlier</span>' in row
    rel = Path(os.path.relpath(dataset / "00000129_000.png", run)).as_posix()
    assert f'<span class="small path">{rel}</span>' in row
    assert "; heat" not in row
    assert "largest changes: " in row
    first = report_row(run, dataset / "00000100_000.png")
    assert "no prior: no earlier study of this patient" in first


def test_resume_draws_the_same_heatmaps_without_decoding(dataset, run, tiny_model, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(run, out)  # copy2: modification times kept
    thumbs = {p.name: p.stat().st_mtime_ns for p in (out / "thumbs").iterdir()}
    drawn = {p.name: p.read_bytes() for p in (out / "thumbs").glob("*_prior.jpg")}
    assert len(drawn) == 2
    for name in drawn:
        (out / "thumbs" / name).unlink()
    summary = screen([dataset], out, model=tiny_model, device="cpu", workers=2, priority="new")
    assert summary.resumed == 3
    assert summary.processed == 0
    assert {p.name: p.read_bytes() for p in (out / "thumbs").glob("*_prior.jpg")} == drawn
    assert {p.name: p.stat().st_mtime_ns for p in (out / "thumbs").iterdir()
            if not p.name.endswith("_prior.jpg")} == {k: v for k, v in thumbs.items()
                                                      if not k.endswith("_prior.jpg")}
    check_prior_heatmap(out, tiny_model, dataset / "00000075_000.png",
                         dataset / "00000129_000.png")


def test_grid_keeps_the_normalised_cams(nih_png, tiny_model, run) -> None:
    pred = Engine(tiny_model, device="cpu").predict_one(load_image(nih_png))
    grid = grid_record(pred)
    for i, label in enumerate(pred.labels):
        assert np.abs(grid_cam(grid, i) - normalise_cam(pred.cam(label))).max() < 5e-4
    records = read_journal(run / JOURNAL_NAME).records.values()
    assert len(records) == 3
    # every image of a patient (a possible prior) keeps its grid
    assert all(r[GRID_FIELD]["shape"][0] == len(pred.labels) for r in records)
