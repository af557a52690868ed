"""Prior columns and --priority new on journal records (no model): which record is whose
prior, what changed, and the worklist order."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from chexnet.inference.priors.identity import StudyIdentity
from chexnet.inference.priors.keys import PatientKeys
from chexnet.inference.screen.results import RunModel, csv_columns, worklist

LABELS = ("Effusion", "Mass")
MODEL = RunModel("m", "1", "0" * 64, False, LABELS, (0.5, 0.5))


def _record(keys: PatientKeys, path: str, probs, patient: str, day: str, *,
            status: str = "ok", role: str | None = None, study: str | None = None) -> dict:
    ident = StudyIdentity(patient=patient, when=datetime.fromisoformat(day),
                          study_uid=study or f"1.2.{abs(hash(path)) % 10**8}")
    rec = {"path": path, "status": status, "reason": "", "warnings": [],
           "probabilities": list(probs) if status == "ok" else None,
           "identity": keys.record(ident)}
    if role:
        rec["role"] = role
    return rec


@pytest.fixture
def records(tmp_path: Path) -> list[dict]:
    keys = PatientKeys.in_folder(tmp_path)
    return [
        _record(keys, "/d/a_now.png", (0.7, 0.1), "X", "2020-05-01"),
        _record(keys, "/p/a_before.png", (0.2, 0.6), "X", "2020-01-01", role="prior"),
        _record(keys, "/p/a_older.png", (0.9, 0.9), "X", "2019-01-01", role="prior"),
        _record(keys, "/d/b.png", (0.1, 0.95), "Y", "2020-05-01"),
        _record(keys, "/d/b_same_study.png", (0.1, 0.6), "Y", "2020-04-01", study="1.2.9"),
        _record(keys, "/d/b_same_study2.png", (0.3, 0.2), "Y", "2020-04-01", study="1.2.9"),
        _record(keys, "/d/c_lateral.png", (), "Y", "2021-01-01", status="not_analysed"),
    ]


def test_prior_columns_from_records(records, tmp_path) -> None:
    rows = {Path(r.path).name: r for r in worklist(records, MODEL, "max-above-threshold",
                                                  tmp_path)}
    assert "a_before.png" not in rows  # a --priors file is a candidate, not a row
    a = rows["a_now.png"].prior
    assert not Path(a.path).is_absolute()
    assert Path(tmp_path, a.path).resolve() == Path("/p/a_before.png")  # the latest, not older
    assert a.interval_days == 121
    assert a.deltas == pytest.approx({"Effusion": 0.5, "Mass": -0.5})
    assert (a.new, a.resolved) == (("Effusion",), ("Mass",))
    # b's latest prior is the 2020-04-01 study (two images: the first by path represents it)
    assert Path(tmp_path, rows["b.png"].prior.path).resolve() == Path("/d/b_same_study.png")
    # images of one study are not each other's prior
    assert rows["b_same_study2.png"].prior.reason == "no earlier study of this patient"
    assert rows["c_lateral.png"].prior.reason == "not analysed"
    assert rows["b.png"].prior.new == ()
    assert rows["a_now.png"].prior.patient_key != rows["b.png"].prior.patient_key
    assert rows["b.png"].prior.patient_key == rows["c_lateral.png"].prior.patient_key


def test_priority_new_puts_new_findings_first(records, tmp_path) -> None:
    default = [Path(r.path).name for r in worklist(records, MODEL, "max-above-threshold",
                                                   tmp_path)]
    new = [Path(r.path).name for r in worklist(records, MODEL, "new", tmp_path)]
    assert default[:2] == ["b.png", "a_now.png"]  # Mass 0.95 > Effusion 0.7
    assert new[:2] == ["a_now.png", "b.png"]  # a's Effusion is new since its prior
    assert sorted(new) == sorted(default)


def test_csv_columns_leave_the_date_to_include_phi() -> None:
    assert "prior_date" not in csv_columns(LABELS, include_phi=False)
    cols = csv_columns(LABELS, include_phi=True)
    assert cols[-9:] == ["patient_key", "prior_path", "prior_date", "prior_interval_days",
                         "prior_reason", "new_findings", "resolved_findings", "delta_Effusion",
                         "delta_Mass"]
