"""Synthetic chest phantoms: deterministic, boxes that match the labels and the pixels, a data set
that the label reader accepts, and a task that is neither impossible nor trivial."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from chexnet.training.data.labels import read_label_file
from chexnet.training.data.phantom import (
    BBOX_HEADER,
    PHANTOM_LABELS,
    iter_phantoms,
    main,
    make_phantom,
    write_phantom_dataset,
)
from tests.conftest import NIH_SAMPLE

SIZE = 96
LUNG_LESIONS = ("nodule", "mass", "effusion", "pneumothorax")  # boxed inside a lung field


@pytest.fixture(scope="module")
def phantoms():
    rng = np.random.default_rng(7)
    return [make_phantom(rng, SIZE) for _ in range(80)]


def _in_boxes(boxes, size):
    inside = np.zeros((size, size), dtype=bool)
    for _, x, y, w, h in boxes:
        inside[int(y):int(y + h), int(x):int(x + w)] = True
    return inside


def test_same_seed_same_phantom_other_seed_other_phantom():
    a = make_phantom(np.random.default_rng(3))
    b = make_phantom(np.random.default_rng(3))
    c = make_phantom(np.random.default_rng(4))
    assert a.image.shape == (128, 128)
    assert a.image.dtype == np.uint8
    assert np.array_equal(a.image, b.image)
    assert a.labels == b.labels
    assert a.boxes == b.boxes
    assert not np.array_equal(a.image, c.image)


@pytest.mark.parametrize("size", [64, 512])
def test_sizes_from_64_to_512(size):
    ph = make_phantom(np.random.default_rng(0), size, p_lesion=1.0)
    assert ph.image.shape == (size, size)
    assert ph.image.dtype == np.uint8
    assert ph.lung_mask.shape == (size, size)
    assert 0.1 < ph.lung_mask.mean() < 0.5
    assert 20 < ph.image.mean() < 200
    assert ph.image.std() > 20
    assert sum(ph.labels.values()) == 2
    assert len(ph.boxes) >= 2


def test_labels_match_boxes(phantoms):
    counts = np.zeros(len(PHANTOM_LABELS))
    for ph in phantoms:
        assert tuple(ph.labels) == PHANTOM_LABELS
        boxed = {b[0] for b in ph.boxes}
        for i, lb in enumerate(PHANTOM_LABELS):
            assert (lb in boxed) == bool(ph.labels[lb]), (lb, ph.labels, ph.boxes)
            counts[i] += ph.labels[lb]
        assert sum(ph.labels.values()) <= 2
    assert (counts >= 8).all(), counts  # every kind shows up, at roughly p_lesion
    assert sum(not any(ph.labels.values()) for ph in phantoms) >= 5  # and normal images


def test_boxes_inside_image_and_lung_lesions_inside_lung_fields(phantoms):
    for ph in phantoms:
        ys, xs = np.nonzero(ph.lung_mask)
        lx0, lx1, ly0, ly1 = xs.min() - 3, xs.max() + 4, ys.min() - 3, ys.max() + 4
        for lb, x, y, w, h in ph.boxes:
            in_image = min(x, y) >= 0 and min(w, h) >= 1 and max(x + w, y + h) <= SIZE
            assert in_image, (lb, x, y, w, h)
            if lb not in LUNG_LESIONS:
                continue
            lung_box = lx0 <= x and x + w <= lx1 and ly0 <= y and y + h <= ly1
            assert lung_box, (lb, ph.boxes)
            in_lung = ph.lung_mask[int(y):int(y + h), int(x):int(x + w)].mean()
            assert in_lung > (0.6 if lb in ("nodule", "mass") else 0.3), (lb, in_lung)
            if lb == "nodule":
                assert max(w, h) < 0.12 * SIZE
            if lb == "mass":
                assert max(w, h) > 0.08 * SIZE


def test_lesions_change_pixels_inside_their_boxes():
    rng_seeds = range(30)
    checked = set()
    for seed in rng_seeds:
        ph = make_phantom(np.random.default_rng(seed), SIZE, p_lesion=0.5)
        if not ph.boxes:
            continue
        bare = make_phantom(np.random.default_rng(seed), SIZE, p_lesion=0.5, lesions=False)
        assert not any(bare.labels.values())
        assert bare.boxes == []
        diff = np.abs(ph.image.astype(np.int16) - bare.image)
        inside = _in_boxes(ph.boxes, SIZE)
        assert diff[inside].sum() > 0.9 * diff.sum()  # the change is in the boxes...
        assert diff[inside].mean() > 20 * max(diff[~inside].mean(), 0.01)
        for lb, x, y, w, h in ph.boxes:  # ...and every box holds a visible change
            assert diff[int(y):int(y + h), int(x):int(x + w)].mean() > 2, lb
            checked.add(lb)
    assert checked == set(PHANTOM_LABELS)


def test_label_subset_and_no_lesions():
    rng = np.random.default_rng(1)
    ph = make_phantom(rng, 64, labels=("nodule", "effusion"), p_lesion=1.0)
    assert ph.labels == {"nodule": 1, "effusion": 1}
    normal = make_phantom(rng, 64, p_lesion=0.0)
    assert not any(normal.labels.values())
    assert normal.boxes == []
    with pytest.raises(ValueError, match="labels"):
        make_phantom(rng, 64, labels=("Pneumonia",))


def test_dataset_reads_back_and_is_deterministic(tmp_path):
    out = write_phantom_dataset(tmp_path / "a", 12, size=64, seed=5, images_per_patient=3)
    again = write_phantom_dataset(tmp_path / "b", 12, size=64, seed=5, images_per_patient=3)
    assert out == tmp_path / "a" / "labels.csv"
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    assert len(files) == 14
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (again.parent / f).read_bytes(), f

    table = read_label_file(out)
    expected = list(iter_phantoms(12, size=64, seed=5, images_per_patient=3))
    assert table.labels == PHANTOM_LABELS
    assert table.y.shape == (12, len(PHANTOM_LABELS))
    assert table.ids[0] == "images/phantom_00000.png"
    assert len(set(table.patients)) == 4
    assert table.patients[:3] == ("P00000",) * 3
    for row, path, (name, _, ph) in zip(table.y, table.paths, expected, strict=True):
        assert path.is_file()
        assert path.name == name
        assert np.array_equal(np.asarray(Image.open(path)), ph.image)
        assert row.tolist() == [ph.labels[lb] for lb in PHANTOM_LABELS]

    raw = (tmp_path / "a" / "bbox.csv").read_bytes().decode()
    assert raw.startswith(BBOX_HEADER + "\r\n")
    with open(tmp_path / "a" / "bbox.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["Image Index", "Finding Label", "Bbox [x", "y", "w", "h]"]
    boxes = [(r[0], r[1], *map(float, r[2:])) for r in rows[1:]]
    assert all(len(r) == 6 for r in rows[1:])
    assert boxes == [(name, *b) for name, _, ph in expected for b in ph.boxes]


def test_bbox_header_is_nih_s():
    nih = NIH_SAMPLE / "BBox_List_2017.csv"
    if not nih.is_file():
        pytest.skip(f"{nih} absent")
    with open(nih, newline="", encoding="utf-8-sig") as fh:
        header = fh.readline()
        first = next(csv.reader(fh))
    assert header.rstrip("\r\n") == BBOX_HEADER
    assert len(first) == 6


def test_command_line(tmp_path, capsys):
    assert main([str(tmp_path / "ds"), "--n", "4", "--size", "64", "--seed", "2"]) == 0
    assert "wrote 4 phantoms" in capsys.readouterr().out
    assert len(read_label_file(tmp_path / "ds" / "labels.csv")) == 4
    with pytest.raises(SystemExit):
        main([str(tmp_path / "bad"), "--labels", "nodule,Pneumonia"])


def test_simple_features_beat_chance_but_are_not_perfect():
    """Neither impossible nor trivial: crude hand-made features separate nodule and effusion
    cases better than chance, and the nodule one stays far from perfect."""
    metrics = pytest.importorskip("sklearn.metrics", reason="training extra not installed")
    size, rng = 128, np.random.default_rng(11)
    phs = [make_phantom(rng, size) for _ in range(240)]
    u = (np.arange(size) + 0.5) / size
    xx, yy = np.meshgrid(u, u)
    fy, fx = np.fft.fftfreq(size)[:, None], np.fft.rfftfreq(size)[None, :]
    blur = [np.exp(-2 * (np.pi * s) ** 2 * (fx**2 + fy**2)) for s in (2.0, 4.0)]
    # effusion: brightest lower lung band of a nominal (not per-image) chest
    bands = [(((xx - c) / 0.11) ** 2 + ((yy - 0.46) / 0.26) ** 2 < 1) & (yy > 0.6)
             for c in (0.335, 0.665)]
    # nodule: strongest blob (difference of Gaussians) inside the eroded lung fields
    auc = {}
    feats = {"nodule": [], "effusion": []}
    for ph in phs:
        img = ph.image / 255.0
        dog = np.fft.irfft2(np.fft.rfft2(img) * (blur[0] - blur[1]), s=img.shape)
        lung = sliding_window_view(np.pad(ph.lung_mask, 2), (5, 5)).min(axis=(-1, -2))
        feats["nodule"].append(dog[lung].max())
        feats["effusion"].append(max(img[b].mean() for b in bands))
    for lb, f in feats.items():
        auc[lb] = metrics.roc_auc_score([ph.labels[lb] for ph in phs], f)
    assert min(auc.values()) > 0.7, auc
    assert min(auc.values()) < 0.99, auc
