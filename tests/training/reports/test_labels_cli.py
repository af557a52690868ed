"""``chexnet labels-from-reports`` end to end: reports CSV -> clusters -> edited map -> labels.csv
that chexnet-train loads (and trains on, with real NIH images)."""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from chexnet.training.data.dataset import load_dataset
from chexnet.training.data.labels import LabelFileError, read_generic_csv
from chexnet.training.reports.assertion_clauses import mining_clauses
from chexnet.training.reports.corpus import BOILERPLATE, NORMAL, generate_corpus
from tests.training.reports.helpers import read_csv, run, train_smoke

EXTRA = [  # rows the rules are about: (report, expected labels or None for "left out")
    ("", None),  # empty report
    ("请结合临床。", None),  # only a boilerplate clause: unknown, not normal
    ("心肺未见明显异常，主动脉硬化。", {"aortosclerosis"}),  # a finding beats "normal"
]


def name_clusters_like_a_user(out: Path, clause_group: dict[str, str],
                              encoding: str = "utf-8") -> dict[int, str]:
    """Fill label_map.csv as a reader would: each cluster gets the disease most of its clause
    occurrences name (language dropped, so Chinese and English clusters merge); boilerplate
    clusters are ignored."""
    votes: dict[int, Counter] = {}
    for row in read_csv(out / "clauses.csv"):
        group = clause_group.get(row["clause"], "unknown:zh").split(":")[0]
        votes.setdefault(int(row["cluster"]), Counter())[group] += int(row["count"])
    rows = read_csv(out / "label_map.csv")
    names = {}
    for row in rows:
        top = votes[int(row["cluster"])].most_common(1)[0][0]
        if top.startswith(BOILERPLATE):
            row["label"], row["ignore"] = "", "1"
        else:
            row["label"], row["ignore"] = top, "0"
            names[int(row["cluster"])] = top
    with open(out / "label_map.csv", "w", newline="", encoding=encoding) as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return names


@pytest.fixture(scope="module")
def corpus():
    return generate_corpus(800, seed=5)


def write_reports(folder: Path, reports: list[str], image_for) -> Path:
    path = folder / "reports.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "patient_id", "findings", "diagnosis"])
        for i, report in enumerate(reports):
            w.writerow([image_for(i), f"P{i // 2:04d}", "心影不大", report])
    return path


def test_reports_to_clusters_to_labels_that_chexnet_train_loads(tmp_path, capsys, corpus):
    images = tmp_path / "data" / "images"
    images.mkdir(parents=True)
    reports = [*corpus.reports, *(r for r, _ in EXTRA)]
    grey = Image.fromarray(np.full((16, 16), 128, dtype=np.uint8))
    for i in range(len(reports)):
        grey.save(images / f"img_{i:04d}.png")
    csv_path = write_reports(tmp_path / "data", reports, lambda i: f"images/img_{i:04d}.png")
    out = tmp_path / "labels"

    code, text, err = run(capsys, csv_path, "--out", out, "--k-range", "5:30", "--top", "5")
    assert code == 0, err
    assert "the top 5 clusters cover" in text
    meta = json.loads((out / "clustering.json").read_text(encoding="utf-8"))
    assert meta["images"] == len(reports)
    # clustered per assertion group; each group's k is its best silhouette in its share of 5:30
    groups = meta["groups"]
    assert meta["k"] == sum(g["k"] for g in groups.values())
    assert {"finding", "normal", "other"} <= set(groups)
    for g in groups.values():
        if g.get("silhouettes"):
            assert g["silhouette"] == pytest.approx(max(g["silhouettes"].values()), abs=0.02)
            assert 2 <= g["k"] <= 30

    # clusters.csv against an independent count from the reports and clauses.csv
    clauses = {r["clause"]: int(r["cluster"]) for r in read_csv(out / "clauses.csv")}
    per_image = [{clauses[c] for c in mining_clauses(r)} for r in reports]
    rows = read_csv(out / "clusters.csv")
    assert [int(r["cluster"]) for r in rows] == list(range(meta["k"]))
    covered: set[int] = set()
    for r in rows:
        j = int(r["cluster"])
        imgs = {i for i, cs in enumerate(per_image) if j in cs}
        covered |= imgs
        assert int(r["images"]) == len(imgs)
        assert float(r["share_of_images"]) == pytest.approx(len(imgs) / len(reports), abs=1e-4)
        assert int(r["single"]) == sum(1 for cs in per_image if cs == {j})
        assert float(r["cumulative_share"]) == pytest.approx(len(covered) / len(reports),
                                                             abs=1e-4)
        assert r["medoid"] in clauses
        assert clauses[r["medoid"]] == j
    assert [int(r["images"]) for r in rows] == sorted((int(r["images"]) for r in rows),
                                                      reverse=True)
    top5 = sum(1 for cs in per_image if cs & set(range(5))) / len(reports)
    assert f"the top 5 clusters cover {top5:.1%} of the images" in text
    assert text.count("\n    ") >= 5  # the five clusters are listed
    suggested = {r["label"] for r in read_csv(out / "label_map.csv")}
    assert {"normal", "increased lung marking", "aortosclerosis"} <= suggested

    names = name_clusters_like_a_user(out, corpus.clause_group)
    code, text, err = run(capsys, csv_path, "--out", out, "--apply-map", out / "label_map.csv")
    assert code == 0, err
    assert "1 reports said normal and named a finding" in text

    table = read_generic_csv(out / "labels.csv")  # what chexnet-train reads
    assert set(table.labels) == set(names.values())
    assert NORMAL in table.labels
    for name, patient in zip(table.ids, table.patients, strict=True):  # carried for the split
        assert patient == f"P{int(Path(name).stem.split('_')[1]) // 2:04d}"
    got = {Path(p).name: {lb for lb, v in zip(table.labels, y, strict=True) if v}
           for p, y in zip(table.ids, table.y, strict=True)}
    assert all((out / p).is_file() for p in table.ids)  # paths relative to labels.csv
    exact = sum(got.get(f"img_{i:04d}.png") == set(d) for i, d in enumerate(corpus.diseases))
    assert exact / len(corpus.diseases) >= 0.9, exact  # seen: 775 of 800 (0.97)
    normal = table.labels.index(NORMAL)
    assert not np.any((table.y[:, normal] == 1) & (table.y.sum(axis=1) > 1))
    n = len(corpus.reports)
    assert got[f"img_{n + 2:04d}.png"] == EXTRA[2][1]
    left_out = {Path(r["image"]).name: r["reason"] for r in read_csv(out / "unlabelled.csv")}
    assert left_out[f"img_{n:04d}.png"] == "empty report"
    assert "ignored or unnamed" in left_out[f"img_{n + 1:04d}.png"]
    assert len(table) + len(left_out) == len(reports)

    # chexnet-train's reader; normal vs abnormal is `--labels abnormal` (= not normal): the
    # `normal` column itself is the absence of findings, never a label to train
    splits = load_dataset(out / "labels.csv", labels="abnormal", seed=0)
    assert len(splits.train) + len(splits.val) + len(splits.test) == len(table)
    assert splits.table.labels == ("abnormal",)
    planted_normal = {f"img_{i:04d}.png" for i, d in enumerate(corpus.diseases) if NORMAL in d}
    y = splits.table.y[:, 0]
    agree = sum((Path(p).name in planted_normal) == (not v)
                for p, v in zip(splits.table.ids, y, strict=True))
    assert agree / len(y) >= 0.95
    assert NORMAL not in load_dataset(out / "labels.csv", seed=0).table.labels
    with pytest.raises(LabelFileError, match="the absence of findings"):
        load_dataset(out / "labels.csv", labels=NORMAL, seed=0)


def test_real_chexnet_train_run_on_mined_labels(tmp_path, capsys, corpus, nih_sample):
    torch = pytest.importorskip("torch", reason="training extra (torch) not installed")
    del torch

    pngs = sorted((nih_sample / "images").glob("*.png"))[:40]
    reports = list(corpus.reports[:40])
    csv_path = write_reports(tmp_path, reports, lambda i: str(pngs[i]))
    out = tmp_path / "labels"
    assert run(capsys, csv_path, "--out", out, "--k", "12")[0] == 0
    # the map edited in Excel on a Chinese Windows comes back as GBK
    name_clusters_like_a_user(out, corpus.clause_group, encoding="gbk")
    assert run(capsys, csv_path, "--out", out, "--apply-map", out / "label_map.csv")[0] == 0
    info = train_smoke(capsys, out / "labels.csv", tmp_path, "--labels", "abnormal")
    assert info["status"] == "finished"
    assert sum(info["data"][s]["images"] for s in ("train", "val", "test")) == len(
        read_generic_csv(out / "labels.csv"))


def test_sop_instance_uid_reports_need_the_dicom_folder(tmp_path, capsys, rg1_uncr):
    folder = tmp_path / "dicoms"
    folder.mkdir()
    shutil.copy(rg1_uncr, folder / "IM0001")
    uid = str(pydicom.dcmread(rg1_uncr, stop_before_pixels=True).SOPInstanceUID)
    corpus = generate_corpus(60, seed=2)
    csv_path = tmp_path / "reports.csv"
    with open(csv_path, "w", newline="", encoding="gb18030") as fh:  # a Chinese PACS export
        w = csv.writer(fh)
        w.writerow(["SOPInstanceUID", "诊断意见"])
        w.writerow([uid, "主动脉硬化"])
        for i, r in enumerate(corpus.reports):
            w.writerow([f"1.2.826.0.1.{i}", r])
    out = tmp_path / "out"
    assert run(capsys, csv_path, "--out", out, "--k", "8")[0] == 0
    map_rows = read_csv(out / "label_map.csv")
    code, _, err = run(capsys, csv_path, "--out", out, "--apply-map", out / "label_map.csv")
    assert code == 2
    assert "--images" in err
    for row in map_rows:
        row["label"] = row["label"] or "other"
    with open(out / "label_map.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(map_rows[0]))
        w.writeheader()
        w.writerows(map_rows)
    code, _, err = run(capsys, csv_path, "--out", out, "--apply-map", out / "label_map.csv",
                       "--images", folder)
    assert code == 0, err
    table = read_generic_csv(out / "labels.csv")
    assert len(table) == 1
    assert table.paths[0].resolve() == (folder / "IM0001").resolve()
    assert table.y[0, table.labels.index("aortosclerosis")] == 1
    reasons = {r["reason"] for r in read_csv(out / "unlabelled.csv")}
    assert reasons == {"no DICOM with this SOP Instance UID in --images"}


@pytest.mark.parametrize(("edit", "match"), [
    ({"label": "path", "ignore": "0"}, "'path' cannot be a label name"),
    ({"label": "x", "ignore": "maybe"}, "ignore must be 0 or 1"),
    ({"label": "", "ignore": "1"}, "names no label"),
])
def test_bad_label_maps_are_named_errors(tmp_path, capsys, corpus, edit, match):
    csv_path = write_reports(tmp_path, list(corpus.reports[:100]), lambda i: f"i{i}.png")
    out = tmp_path / "out"
    assert run(capsys, csv_path, "--out", out, "--k", "6")[0] == 0
    rows = read_csv(out / "label_map.csv")
    for row in rows:
        row.update(edit)
    with open(out / "label_map.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    code, _, err = run(capsys, csv_path, "--out", out, "--apply-map", out / "label_map.csv")
    assert code == 1
    assert match in err


def test_apply_before_clustering_and_new_reports(tmp_path, capsys, corpus):
    csv_path = write_reports(tmp_path, list(corpus.reports[:200]), lambda i: f"i{i}.png")
    out = tmp_path / "out"
    code, _, err = run(capsys, csv_path, "--out", out, "--apply-map", out / "label_map.csv")
    assert code == 1
    assert "run labels-from-reports without --apply-map" in err
    assert run(capsys, csv_path, "--out", out, "--k", "10", "--min-size", "15")[0] == 0
    small = [r for r in read_csv(out / "label_map.csv") if int(r["images"]) < 15]
    assert all(r["ignore"] == "1" for r in small)
    # the reports change after clustering: new clauses join their nearest medoid
    csv_path = write_reports(tmp_path, [*corpus.reports[:200], "双肺纹理增多明显"],
                             lambda i: f"i{i}.png")
    code, text, err = run(capsys, csv_path, "--out", out, "--apply-map", out / "label_map.csv")
    assert code == 0, err
    assert "differs from the file step 1 clustered" in text
    assert "1 clauses were new" in text
