"""Screening with priors: prior columns equal independent Engine predictions subtracted, new
and resolved at the card's operating points, --priors files scored only for the run's patients
and never rows, PHI kept out, keys kept on resume."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from chexnet.inference import Engine, load_image
from chexnet.inference.priors.keys import KEY_FILE
from chexnet.inference.screen.journal import JOURNAL_NAME, read_journal
from chexnet.inference.screen.pipeline import CSV_NAME, read_worklist, screen
from chexnet.inference.screen.report import REPORT_NAME
from chexnet.inference.screen.run import file_id
from tests.inference.screen.prior_studies import check_prior_heatmap, rg1_study
from tests.tiny_model import build_tiny_package, tiny_card


def read_csv(path: Path) -> dict[str, dict]:
    return {Path(r["path"]).name: r for r in csv.DictReader(io.StringIO(path.read_text()))}


@pytest.fixture(scope="module")
def studies(tmp_path_factory, rg1_uncr) -> Path:
    """in/: PAT-1 2020 and PAT-2 2020; old/: PAT-1 2019 and 2018, PAT-1 of issuer B 2019-12,
    PAT-9 2018 (no patient of the run)."""
    root = tmp_path_factory.mktemp("priors")
    rg1_study(rg1_uncr, root / "in" / "now.dcm", variant=0, date="20200707")
    rg1_study(rg1_uncr, root / "in" / "other.dcm", variant=2, patient="PAT-2", date="20200101")
    rg1_study(rg1_uncr, root / "old" / "y2019.dcm", variant=4, date="20190304")
    rg1_study(rg1_uncr, root / "old" / "y2018.dcm", variant=1, date="20180105")
    rg1_study(rg1_uncr, root / "old" / "issuer_b.dcm", variant=3, issuer="B", date="20191201")
    rg1_study(rg1_uncr, root / "old" / "stranger.dcm", variant=1, patient="PAT-9",
              date="20180105")
    return root


@pytest.fixture(scope="module")
def model(studies, tmp_path_factory, tiny_model) -> tuple[Path, dict]:
    """The tiny model with one operating point set between now's and 2019's probability of the
    finding that changed most, so that finding is new (or resolved) by construction."""
    engine = Engine(tiny_model, device="cpu")
    now = engine.predict_one(load_image(studies / "in" / "now.dcm"))
    before = engine.predict_one(load_image(studies / "old" / "y2019.dcm"))
    delta = dict(zip(engine.labels, now.probabilities - before.probabilities, strict=True))
    label = max(delta, key=lambda lb: abs(delta[lb]))
    mid = (float(now.probabilities[engine.labels.index(label)])
           + float(before.probabilities[engine.labels.index(label)])) / 2
    thresholds = {lb: 0.999 for lb in engine.labels} | {label: mid}
    path = build_tiny_package(tmp_path_factory.mktemp("m") / "m.onnx",
                              tiny_card(thresholds=thresholds))
    return path, {"label": label, "delta": delta, "grew": delta[label] > 0}


@pytest.fixture(scope="module")
def run(studies, model, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    # a known shift (the default is random): no shifted date can equal a real one by chance
    (out / KEY_FILE).write_text(json.dumps({"salt": "ab" * 32, "shift_days": -1234}))
    summary = screen([studies / "in"], out, model=model[0], device="cpu", workers=2,
                     priors=[studies / "old"], priority="new")
    return out, summary


def test_prior_columns_equal_independent_predictions(studies, model, run) -> None:
    out, summary = run
    rows = read_csv(out / CSV_NAME)
    assert set(rows) == {"now.dcm", "other.dcm"}  # --priors files are no rows
    assert summary.total == 2
    now = rows["now.dcm"]
    assert not Path(now["prior_path"]).is_absolute()  # relative to the output folder
    assert (out / now["prior_path"]).resolve() == (studies / "old" / "y2019.dcm").resolve()
    assert now["prior_interval_days"] == "491"  # 2019-03-04 -> 2020-07-07
    assert now["prior_reason"] == ""
    for label, delta in model[1]["delta"].items():
        assert float(now[f"delta_{label}"]) == pytest.approx(delta, abs=2e-6)
    label = model[1]["label"]
    assert now["new_findings" if model[1]["grew"] else "resolved_findings"] == label
    assert now["resolved_findings" if model[1]["grew"] else "new_findings"] == ""
    other = rows["other.dcm"]
    assert other["prior_path"] == ""
    assert other["prior_reason"] == "no earlier study of this patient"
    assert other["patient_key"] != now["patient_key"]
    assert len(now["patient_key"]) == 16


def test_only_the_runs_patients_priors_are_scored(studies, run) -> None:
    out, _ = run
    journaled = {Path(p).name for p in read_journal(out / JOURNAL_NAME).records}
    # issuer B's PAT-1 is another patient: neither a prior nor scored
    assert journaled == {"now.dcm", "other.dcm", "y2019.dcm", "y2018.dcm"}
    # no picture of another patient in the output folder
    thumbs = {p.name for p in (out / "thumbs").iterdir()}
    for name in ("stranger.dcm", "issuer_b.dcm"):
        assert not any(t.startswith(file_id(studies / "old" / name)) for t in thumbs)
    assert f"{file_id(studies / 'old' / 'y2019.dcm')}.jpg" in thumbs
    # 4 grey thumbnails, the rows' 2 heat maps, now.dcm's prior's heat map of now's finding
    # (a --priors file gets no heat map of its own finding: it is no row)
    assert len(thumbs) == 7
    assert sum(t.endswith("_prior.jpg") for t in thumbs) == 1


def test_the_summary_counts_priors_apart_from_images(run) -> None:
    """2 input images and 2 scored --priors files: the summary's "this run" says so."""
    _, summary = run
    assert (summary.processed, summary.priors_scored) == (4, 2)
    assert "this run 2 images + 2 --priors files in" in summary.text()


def test_no_phi_in_outputs(run) -> None:
    out, _ = run
    for name in (CSV_NAME, JOURNAL_NAME, REPORT_NAME):
        text = (out / name).read_text()
        for phi in ("PAT-1", "PAT-2", "2019-03-04", "20190304", "2020-07-07", "20200707"):
            assert phi not in text, (name, phi)
    assert "prior_date" not in (out / CSV_NAME).read_text()


def test_report_shows_the_prior_images(studies, model, run) -> None:
    out, _ = run
    html = (out / REPORT_NAME).read_text()
    assert "prior: 491 days earlier<" in html  # no date without --include-phi
    # a --priors file's heat map, drawn for the row's finding from its journaled CAM grid
    check_prior_heatmap(out, model[0], studies / "in" / "now.dcm", studies / "old" / "y2019.dcm")
    assert html.count('alt="prior') == 2  # the prior's thumbnail and heat map, for now.dcm
    assert "no prior: no earlier study of this patient" in html


def test_include_phi_shows_the_date_and_resume_keeps_keys(studies, model, tmp_path) -> None:
    """(The run writes its own key file here: random salt and shift, private to its owner.)"""
    kwargs = dict(model=model[0], device="cpu", workers=2, priors=[studies / "old"],
                  include_phi=True)
    screen([studies / "in" / "now.dcm"], tmp_path, **kwargs)
    first = read_csv(tmp_path / CSV_NAME)["now.dcm"]
    assert (tmp_path / KEY_FILE).stat().st_mode & 0o077 == 0
    assert first["prior_date"] == "2019-03-04"
    html = (tmp_path / REPORT_NAME).read_text()
    assert "prior: 2019-03-04 · 491 days earlier" in html
    again = screen([studies / "in"], tmp_path, **kwargs)  # resumes, adds other.dcm
    assert again.resumed == 1
    rows = read_csv(tmp_path / CSV_NAME)
    assert rows["now.dcm"] == {**first, "rank": rows["now.dcm"]["rank"]}
    _, worklist = read_worklist(tmp_path)
    assert worklist[0].prior is not None


def test_a_prior_screened_later_as_an_input_becomes_a_row(studies, model, run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(run[0], out)
    summary = screen([studies / "in", studies / "old"], out, model=model[0], device="cpu",
                     workers=2)
    # y2019 and y2018 were scored as --priors files: screened again as inputs, with the two
    # files no patient of the first run had
    assert summary.resumed == 2
    assert summary.processed == 4
    rows = read_csv(out / CSV_NAME)
    assert set(rows) == {"now.dcm", "other.dcm", "y2019.dcm", "y2018.dcm", "issuer_b.dcm",
                         "stranger.dcm"}
    assert Path(rows["now.dcm"]["prior_path"]).name == "y2019.dcm"
    assert Path(rows["y2019.dcm"]["prior_path"]).name == "y2018.dcm"
    assert rows["issuer_b.dcm"]["prior_reason"].startswith("other issuer")
    assert rows["issuer_b.dcm"]["patient_key"] != rows["now.dcm"]["patient_key"]
