"""Reading datasets as NIH ships them and as users make them; splits by patient; bad input."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image as PILImage

from chexnet.training.data.dataset import DatasetError, load_dataset
from chexnet.training.data.labels import LabelFileError, read_label_file, select_labels

FULL_HEADER = ("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
               "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],\n")


def _nih_release(root, n_patients=12, per_patient=2, full_columns=True, split_folders=True):
    """A miniature NIH release: images_001/images, images_002/images, all 11 CSV columns."""
    rng = np.random.default_rng(0)
    rows, names = [], []
    findings = ["No Finding", "Effusion", "Cardiomegaly|Effusion", "Mass", "Pneumonia"]
    for p in range(1, n_patients + 1):
        for k in range(per_patient):
            name = f"{p:08d}_{k:03d}.png"
            folder = root / (f"images_{1 + (p % 2):03d}/images" if split_folders else "images")
            folder.mkdir(parents=True, exist_ok=True)
            PILImage.fromarray(rng.integers(0, 255, (40, 40), dtype=np.uint8)).save(folder / name)
            label = findings[(p + k) % len(findings)]
            extra = ',58,M,PA,2682,2749,0.143,0.143,' if full_columns else ""
            rows.append(f"{name},{label},{k},{p}{extra}")
            names.append(name)
    header = FULL_HEADER if full_columns else "Image Index,Finding Labels,Follow-up #,Patient ID\n"
    (root / "Data_Entry_2017_v2020.csv").write_text(header + "\n".join(rows) + "\n")
    return names


def test_official_release_layout_and_lists(tmp_path):
    names = _nih_release(tmp_path)
    test = [n for n in names if int(n[:8]) > 9]
    (tmp_path / "test_list.txt").write_text("\n".join(test) + "\n")
    (tmp_path / "train_val_list.txt").write_text(
        "\n".join(n for n in names if n not in test) + "\n")
    splits = load_dataset(tmp_path, val_fraction=0.25, seed=1)
    ids = splits.table.ids
    assert sorted(ids[i] for i in splits.test) == sorted(test)
    assert len(splits.train) + len(splits.val) == len(names) - len(test)
    patients = [{splits.table.patients[i] for i in rows}
                for rows in (splits.train, splits.val, splits.test)]
    assert not (patients[0] & patients[1])
    assert not (patients[0] & patients[2])
    assert all(p is not None and p.is_file() for p in splits.table.paths)
    assert "official test_list.txt" in splits.description
    again = load_dataset(tmp_path, val_fraction=0.25, seed=1)
    assert np.array_equal(again.val, splits.val)  # seeded
    other = load_dataset(tmp_path, val_fraction=0.25, seed=2)
    assert not np.array_equal(other.val, splits.val)


def test_the_real_nih_sample_reads_and_splits_by_patient(nih_sample):
    splits = load_dataset(nih_sample, seed=0)
    assert len(splits.table) == 420
    assert len(splits.table.labels) == 14
    sizes = [len(splits.train), len(splits.val), len(splits.test)]
    assert sum(sizes) == 420
    assert min(sizes) > 30
    effusion = splits.table.labels.index("Effusion")
    assert int(splits.table.y[:, effusion].sum()) == 58  # SOURCE.md's count


def test_four_column_csv_and_label_sets(tmp_path):
    _nih_release(tmp_path, full_columns=False, split_folders=False)
    table = read_label_file(tmp_path / "Data_Entry_2017_v2020.csv")
    abnormal = select_labels(table, "abnormal")
    assert abnormal.labels == ("abnormal",)
    no_finding = np.array([t.y.sum() == 0 for t in [table.subset([i]) for i in range(len(table))]])
    assert np.array_equal(abnormal.y[:, 0] == 0, no_finding)
    pneumonia = select_labels(table, "Pneumonia")
    assert pneumonia.y.shape == (len(table), 1)
    with pytest.raises(LabelFileError, match="unknown label"):
        select_labels(table, "Flu")


def test_generic_csv_with_split_column_and_dicom_paths(tmp_path, rg1_uncr):
    import shutil

    (tmp_path / "img").mkdir()
    lines = ["path,patient_id,split,pneumothorax,nodule"]
    for i, split in enumerate(["train", "train", "val", "test"]):
        shutil.copy(rg1_uncr, tmp_path / "img" / f"{i}.dcm")
        lines.append(f"img/{i}.dcm,P{i},{split},{i % 2},{(i + 1) % 2}")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    splits = load_dataset(tmp_path / "labels.csv")
    assert splits.table.labels == ("pneumothorax", "nodule")
    assert [len(splits.train), len(splits.val), len(splits.test)] == [2, 1, 1]
    assert splits.description == "the CSV's split column"


def test_missing_images_are_an_error_not_a_smaller_dataset(tmp_path):
    names = _nih_release(tmp_path)
    (tmp_path / "images_001" / "images" / names[1]).unlink(missing_ok=True)
    (tmp_path / "images_002" / "images" / names[1]).unlink(missing_ok=True)
    with pytest.raises(DatasetError, match="1 of 24 listed images are missing"):
        load_dataset(tmp_path)
    splits = load_dataset(tmp_path, allow_missing=True, report_dir=tmp_path / "run")
    assert len(splits.table) == 23
    assert (tmp_path / "run" / "missing_images.txt").read_text().strip() == names[1]


def test_patient_in_two_official_splits_is_refused(tmp_path):
    names = _nih_release(tmp_path)
    (tmp_path / "test_list.txt").write_text(names[0] + "\n")  # patient 1, image 0
    (tmp_path / "train_val_list.txt").write_text("\n".join(names[1:]) + "\n")  # has image 1
    with pytest.raises(DatasetError, match="patient 1 is in both"):
        load_dataset(tmp_path)


def test_unknown_finding_and_empty_split_are_refused(tmp_path):
    _nih_release(tmp_path, n_patients=2)
    csv = tmp_path / "Data_Entry_2017_v2020.csv"
    with pytest.raises(DatasetError, match="is empty"):
        load_dataset(tmp_path, val_fraction=0.1, test_fraction=0.1)
    csv.write_text(csv.read_text().replace("Mass", "Flu"))
    with pytest.raises(LabelFileError, match="unknown finding"):
        load_dataset(tmp_path)


def test_allow_missing_keeps_the_official_split(tmp_path):
    names = _nih_release(tmp_path, per_patient=1)
    test = [n for n in names if int(n[:8]) > 8]
    (tmp_path / "test_list.txt").write_text("\n".join(test) + "\n")
    (tmp_path / "train_val_list.txt").write_text(
        "\n".join(n for n in names if n not in test) + "\n")
    gone = names[3]  # a train_val image in the middle of the table
    for folder in ("images_001", "images_002"):
        (tmp_path / folder / "images" / gone).unlink(missing_ok=True)
    splits = load_dataset(tmp_path, val_fraction=0.25, allow_missing=True)
    ids = splits.table.ids
    assert sorted(ids[i] for i in splits.test) == sorted(test)
    assert gone not in ids
    assert len(splits.train) + len(splits.val) == len(names) - len(test) - 1
