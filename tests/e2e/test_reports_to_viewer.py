"""The hospital CAD paper's whole path, as a user runs it: a folder of DICOMs and PNGs with a
CSV of free-text reports -> ``chexnet labels-from-reports`` (cluster, edit the label map, apply)
-> ``chexnet-train`` -> ``chexnet export`` -> the engine the viewer uses reads a DICOM.

The images are phantoms whose lesions match their generated reports (pleural effusion ->
effusion phantom, enlarged heart shadow -> cardiomegaly, nodule -> nodule, normal -> none); the
reports come from the report-labels corpus generator (Chinese and English, typos, digits).
Training is tiny (64 px, one epoch, a few steps): this proves the path, not the model.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="training extra (torch) not installed")
pytest.importorskip("kmedoids", reason="labels-from-reports needs kmedoids")

from PIL import Image

from chexnet.inference import Engine
from chexnet.inference.cli.main import main as chexnet
from chexnet.inference.io.study import load_image
from chexnet.training.cli import train as train_cli
from chexnet.training.data.phantom import iter_phantoms
from chexnet.training.reports.clauses import split_clauses
from chexnet.training.reports.corpus import NORMAL, generate_corpus
from tests.inference.io.dicom_factory import make_dicom

# planted report disease -> phantom lesion (the label the user names the cluster)
DISEASE_TO_LESION = {"pleural effusion": "effusion", "increased heart shadow": "cardiomegaly",
                     "nodule": "nodule"}
LESIONS = tuple(DISEASE_TO_LESION.values())
SIZE = 64


def _lesions(diseases: frozenset[str]) -> frozenset[str]:
    return frozenset(DISEASE_TO_LESION[d] for d in diseases if d in DISEASE_TO_LESION)


def _build_folder(root: Path, n_reports: int = 160) -> tuple[Path, dict, dict]:
    """Images (every third one a DICOM with a patient name) and reports.csv; returns the CSV,
    the corpus' clause -> planted group map (what a reader of the clusters would know) and
    each image's planted lesions."""
    corpus = generate_corpus(n_reports, seed=3, typo_rate=0.1)
    wanted = [(i, _lesions(d)) for i, d in enumerate(corpus.diseases)
              if NORMAL in d or _lesions(d)]  # reports whose findings a phantom can show
    pool: dict[frozenset[str], list] = {}
    for _, _, ph in iter_phantoms(1500, size=SIZE, seed=5, labels=LESIONS, p_lesion=0.5):
        pool.setdefault(frozenset(k for k, v in ph.labels.items() if v), []).append(ph)
    (root / "images").mkdir(parents=True)
    rows, truth = [], {}
    for k, (i, lesions) in enumerate(wanted):
        if not pool.get(lesions):
            continue
        ph = pool[lesions].pop()
        if k % 3 == 0:
            name = f"images/study_{k:04d}.dcm"
            make_dicom(root / name, ph.image.astype(np.uint8), PatientName="Doe^Jane",
                       PatientID=f"PID{k:04d}")
        else:
            name = f"images/study_{k:04d}.png"
            Image.fromarray(ph.image).save(root / name)
        rows.append([name, f"P{k:04d}", corpus.reports[i]])
        truth[Path(name).name] = lesions
    reports = root / "reports.csv"
    with open(reports, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "patient_id", "diagnosis"])
        w.writerows(rows)
    return reports, corpus.clause_group, truth


def _name_clusters(label_map: Path, clause_group: dict) -> None:
    """What the user does by hand: name each cluster after what its medoid says (a finding the
    phantoms show, or normal), and mark every other cluster ignored."""
    with open(label_map, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fields, rows = reader.fieldnames, list(reader)
    for r in rows:
        groups = {clause_group.get(c, "") for c in split_clauses(r["medoid"])}
        disease = next(iter(groups)).split(":")[0] if len(groups) == 1 else ""
        label = NORMAL if disease == NORMAL else DISEASE_TO_LESION.get(disease, "")
        r["label"], r["ignore"] = label, "0" if label else "1"
    with open(label_map, "w", newline="", encoding="utf-8-sig") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


def test_reports_to_labels_to_trained_package_the_viewer_engine_runs(tmp_path, capsys):
    reports, clause_group, planted = _build_folder(tmp_path / "pacs")
    labels_dir = tmp_path / "labels"
    assert chexnet(["labels-from-reports", str(reports), "--out", str(labels_dir),
                    "--k-range", "6:20"]) == 0
    _name_clusters(labels_dir / "label_map.csv", clause_group)
    assert chexnet(["labels-from-reports", str(reports), "--out", str(labels_dir),
                    "--apply-map", str(labels_dir / "label_map.csv")]) == 0
    labels_csv = labels_dir / "labels.csv"
    with open(labels_csv, newline="", encoding="utf-8-sig") as fh:
        table = list(csv.DictReader(fh))
    assert {"normal", "effusion", "cardiomegaly"} <= set(table[0])
    assert any(r["path"].endswith(".dcm") for r in table)
    # the mined labels agree with the planted lesions on most images (edit distance +
    # k-medoids, typos included; a perfect recovery is not the point here)
    assert len(table) >= 0.8 * len(planted)
    for lesion in ("effusion", "cardiomegaly"):
        agree = sum((r[lesion] == "1") == (lesion in planted[Path(r["path"]).name])
                    for r in table)
        assert agree >= 0.9 * len(table), lesion
    assert sum(r["normal"] == "1" for r in table) >= 0.3 * len(table)

    run = tmp_path / "run"
    assert train_cli.main([str(labels_csv), "--out", str(run), "--size", str(SIZE),
                           "--epochs", "1", "--workers", "0", "--max-steps-per-epoch", "3",
                           "--cache-dir", str(tmp_path / "cache")]) == 0
    package = tmp_path / "from_reports.onnx"
    assert chexnet(["export", str(run), "--out", str(package), "--name", "from-reports"]) == 0
    capsys.readouterr()

    engine = Engine(package, device="cpu")
    dicom = next(labels_dir / r["path"] for r in table if r["path"].endswith(".dcm"))
    pred = engine.predict([load_image(dicom)])[0]
    assert pred.analysed, pred
    # normal is the absence of findings: not a trained output (issue 19, item 4)
    assert engine.card.labels == tuple(lb for lb in table[0]
                                       if lb not in ("path", "patient_id", "normal"))
    assert pred.probabilities.shape == (len(engine.card.labels),)
    assert pred.cam(engine.card.labels[0]).ndim == 2
    # the viewer's path: chexnet predict on the DICOM with this package, no PHI in the output
    assert chexnet(["predict", str(dicom), "--model", str(package), "--json"]) == 0
    printed = capsys.readouterr().out
    assert "Doe" not in printed
    assert "from-reports" in printed
    assert json.loads(printed)
