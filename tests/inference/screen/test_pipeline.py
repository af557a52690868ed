"""The screening pipeline's Python API (what the viewer's worklist calls): scores equal the
engine's own on the same files, duplicates are reported and not re-scored, a cancelled run
resumes to the same CSV, the worklist order is the documented one."""

from __future__ import annotations

import csv
import io
import shutil
import threading
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image as PILImage

from chexnet.inference import Engine, load_image
from chexnet.inference.priors.keys import KEY_FILE
from chexnet.inference.scoring.ood import NO_OOD_WARNING
from chexnet.inference.screen.journal import JOURNAL_NAME, read_journal
from chexnet.inference.screen.pipeline import (
    CSV_NAME,
    ScreenConfigError,
    read_worklist,
    screen,
)
from tests.tiny_model import build_tiny_package, tiny_card


def noise_png(path: Path, seed: int, shape=(300, 260)) -> Path:
    rng = np.random.default_rng(seed)
    # a smooth gradient plus noise, so different seeds give clearly different scores
    y, x = np.mgrid[0:shape[0], 0:shape[1]]
    base = (x * rng.uniform(0.2, 0.9) + y * rng.uniform(0.2, 0.9)) % 256
    # (texture well under what the pixel checks call noise)
    pixels = np.clip(base + rng.normal(0, 8, shape), 0, 255).astype(np.uint8)
    PILImage.fromarray(pixels).save(path)
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory, rg1_uncr) -> Path:
    """5 distinct PNGs, a byte copy of one, RG1 without suffix, a re-encoded RG1 keeping its SOP
    Instance UID (different bytes, same instance), a lateral RG1 (not analysed), a text file."""
    root = tmp_path_factory.mktemp("screen_in")
    (root / "sub").mkdir()
    for i in range(5):
        noise_png(root / f"img{i}.png", i)
    shutil.copy(root / "img2.png", root / "sub" / "img2_copy.png")
    shutil.copy(rg1_uncr, root / "rg1")
    ds = pydicom.dcmread(rg1_uncr)
    ds.InstitutionName = "re-exported"
    ds.save_as(root / "sub" / "rg1_again.dcm")
    ds = pydicom.dcmread(rg1_uncr)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.ViewPosition = "LL"
    ds.save_as(root / "lateral.dcm")
    (root / "notes.txt").write_text("not an image\n")
    return root


def read_csv(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


@pytest.fixture(scope="module")
def clean_run(folder, tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("clean")
    rows = []
    summary = screen([folder], out, model=tiny_model, device="cpu", workers=2, batch_size=2,
                     on_row=rows.append)
    return out, summary, rows


def test_every_file_one_row_and_statuses(folder, clean_run):
    out, summary, streamed = clean_run
    table = read_csv(out / CSV_NAME)
    files = sorted(str(p) for p in folder.rglob("*") if p.is_file())
    assert sorted(r["path"] for r in table) == files
    assert sorted(r.path for r in streamed) == files  # on_row saw each file once
    status = {Path(r["path"]).name: r["status"] for r in table}
    assert status == {**{f"img{i}.png": "ok" for i in range(5)}, "img2_copy.png": "duplicate",
                      "rg1": "ok", "rg1_again.dcm": "duplicate", "lateral.dcm": "not_analysed",
                      "notes.txt": "error"}
    assert summary.counts == {"total": 10, "ok": 6, "not_analysed": 1, "error": 1,
                              "duplicate": 2}
    assert not summary.cancelled
    assert summary.processed == 10


def test_scores_equal_the_engines_own(folder, clean_run, tiny_model):
    """The pipeline splits decoding (workers) from scoring (main): same numbers as
    Engine.predict on the fully loaded image."""
    out, _, _ = clean_run
    table = {Path(r["path"]).name: r for r in read_csv(out / CSV_NAME)}
    engine = Engine(tiny_model, device="cpu")
    for name in ("img0.png", "img3.png", "rg1"):
        pred = engine.predict_one(load_image(folder / name))
        got = np.array([float(table[name][lb]) for lb in engine.labels])
        np.testing.assert_allclose(got, pred.probabilities, atol=1.5e-6)
        above = [f.label for f in pred.positives]
        assert table[name]["findings_above_threshold"] == ";".join(above)
        assert float(table[name]["abnormal_score"]) == pytest.approx(pred.top.probability,
                                                                    abs=1e-6)


def test_duplicates_point_to_the_first_copy(folder, clean_run):
    out, _, _ = clean_run
    table = {Path(r["path"]).name: r for r in read_csv(out / CSV_NAME)}
    copy, again = table["img2_copy.png"], table["rg1_again.dcm"]
    assert copy["duplicate_of"] == str(folder / "img2.png")
    assert "same content" in copy["reason"]
    assert again["duplicate_of"] == str(folder / "rg1")
    assert "SOP Instance UID" in again["reason"]
    assert copy["Effusion"] == ""
    assert again["Effusion"] == ""
    assert "lateral" in table["lateral.dcm"]["reason"]
    assert "not a DICOM, PNG or JPEG" in table["notes.txt"]["reason"]


def test_worklist_order_is_the_documented_one(clean_run, tiny_model):
    out, _, _ = clean_run
    table = read_csv(out / CSV_NAME)
    labels = Engine(tiny_model, device="cpu").labels
    assert [int(r["rank"]) for r in table] == list(range(1, len(table) + 1))

    def expected_key(r):  # thresholds of the tiny card: 0.5 for every finding
        group = {"ok": 0, "not_analysed": 2, "error": 3, "duplicate": 4}[r["status"]]
        if r["status"] != "ok":
            return (group, 0.0, r["path"])
        probs = [float(r[lb]) for lb in labels]
        above = [p for p in probs if p >= 0.5]
        return (0, -max(above), r["path"]) if above else (1, -max(probs), r["path"])

    assert table == sorted(table, key=expected_key)
    ok = [r for r in table if r["status"] == "ok"]
    assert all(r["priority"] != "" for r in ok)
    assert all(r["priority"] == "" for r in table if r["status"] != "ok")


def test_priority_by_one_finding_and_read_worklist(clean_run):
    out, _, _ = clean_run
    _model, rows = read_worklist(out, priority="Effusion")
    ok = [r for r in rows if r.status == "ok"]
    eff = [r.probabilities["Effusion"] for r in ok]
    assert eff == sorted(eff, reverse=True)
    assert rows[: len(ok)] == ok
    assert all(r.thumb_path.is_file() and r.cam_path.is_file() for r in ok)
    with pytest.raises(ScreenConfigError, match="Effusion"):  # says what the model knows
        read_worklist(out, priority="Dragons")


def test_cancel_then_resume_gives_the_clean_csv(folder, clean_run, tiny_model, tmp_path):
    clean_out, _, _ = clean_run
    # patient keys are salted per output folder: with the clean run's salt, the same bytes
    shutil.copy(clean_out / KEY_FILE, tmp_path / KEY_FILE)
    cancel = threading.Event()
    first = screen([folder], tmp_path, model=tiny_model, device="cpu", workers=2,
                   batch_size=2, on_row=lambda row: cancel.set(), cancel=cancel)
    assert first.cancelled
    done = len(read_journal(tmp_path / JOURNAL_NAME).records)
    assert 0 < done < 10
    second = screen([folder], tmp_path, model=tiny_model, device="cpu", workers=1, batch_size=3)
    assert not second.cancelled
    assert second.resumed == done
    assert second.processed == 10 - done
    assert (tmp_path / CSV_NAME).read_bytes() == (clean_out / CSV_NAME).read_bytes()


def test_another_model_is_refused_and_fresh_starts_over(folder, clean_run, tmp_path):
    clean_out, _, _ = clean_run
    out = tmp_path / "out"
    shutil.copytree(clean_out, out)
    other = build_tiny_package(tmp_path / "other.onnx", tiny_card(name="other"), seed=1)
    with pytest.raises(ScreenConfigError, match=r"another model.*--fresh"):
        screen([folder / "img0.png"], out, model=other, device="cpu")
    summary = screen([folder / "img0.png"], out, model=other, device="cpu", fresh=True)
    assert summary.counts["total"] == 1
    assert summary.resumed == 0
    assert len(read_csv(out / CSV_NAME)) == 1


def test_retry_failed_reruns_only_error_rows(folder, clean_run, tiny_model, tmp_path):
    clean_out, _, _ = clean_run
    out = tmp_path / "out"
    shutil.copytree(clean_out, out)
    summary = screen([folder], out, model=tiny_model, device="cpu", retry_failed=True)
    assert summary.processed == 1
    assert summary.resumed == 9
    assert (out / CSV_NAME).read_bytes() == (clean_out / CSV_NAME).read_bytes()


def test_test_time_augmentation_matches_the_engine(folder, tiny_model, tmp_path):
    summary = screen([folder / "img1.png", folder / "rg1"], tmp_path, model=tiny_model,
                     device="cpu", tta="five-crop", workers=1)
    assert summary.counts["ok"] == 2
    table = {Path(r["path"]).name: r for r in read_csv(tmp_path / CSV_NAME)}
    engine = Engine(tiny_model, device="cpu", tta="five-crop")
    for name in ("img1.png", "rg1"):
        pred = engine.predict_one(load_image(folder / name))
        got = np.array([float(table[name][lb]) for lb in engine.labels])
        np.testing.assert_allclose(got, pred.probabilities, atol=1.5e-6)
    with pytest.raises(ScreenConfigError, match="five-crop"):  # resume must keep the mode
        screen([folder / "img1.png"], tmp_path, model=tiny_model, device="cpu", tta="none")


def test_usage_problems_are_named(folder, tiny_model, tmp_path):
    with pytest.raises(ScreenConfigError, match="no such file"):
        screen([tmp_path / "missing"], tmp_path / "o", model=tiny_model)
    with pytest.raises(ScreenConfigError, match="I/N"):
        screen([folder], tmp_path / "o", model=tiny_model, shard="2of3")
    with pytest.raises(ScreenConfigError, match="no screening journal"):
        screen([folder / "img0.png"], tmp_path / "o", model=tiny_model, require_journal=True)


def test_jpeg2000_is_decoded_at_model_resolution(rg1_j2kr, rg1_uncr, tiny_model, tmp_path):
    """RG1 in JPEG 2000 is decoded at a reduced level in the workers: its scores are exactly the
    engine's on that reduced decode's model crop, and close to the full-resolution path's."""
    from chexnet.inference.preprocessing import normalise
    from chexnet.inference.scoring.decode_size import model_crop, model_min_side

    shutil.copy(rg1_j2kr, tmp_path / "j2k.dcm")
    out = tmp_path / "out"
    screen([tmp_path / "j2k.dcm"], out, model=tiny_model, device="cpu", workers=1)
    row = read_csv(out / CSV_NAME)[0]
    record = next(iter(read_journal(out / JOURNAL_NAME).records.values()))
    assert record["image_shape"] == [1955, 1841]  # the file's size, not the decoded one
    assert max(record["decoded_shape"]) < 1955
    engine = Engine(tiny_model, device="cpu")
    spec = engine.card.preprocess
    reduced = load_image(tmp_path / "j2k.dcm", min_size=model_min_side(spec))
    assert reduced.is_reduced
    crop, _box = model_crop(reduced, spec)
    expected = engine.run(normalise(crop, spec)[None]).probs[0]
    got = np.array([float(row[lb]) for lb in engine.labels])
    np.testing.assert_allclose(got, expected, atol=1.5e-6)
    full = engine.predict_one(load_image(rg1_uncr)).probabilities
    assert np.abs(got - full).max() < 0.01


def test_a_second_run_in_the_same_folder_is_refused(folder, tiny_model, tmp_path):
    fcntl = pytest.importorskip("fcntl")
    from chexnet.inference.screen.folder import LOCK_NAME

    with open(tmp_path / LOCK_NAME, "a") as held:  # as a running screen holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(ScreenConfigError, match="another chexnet screen"):
            screen([folder / "img0.png"], tmp_path, model=tiny_model, device="cpu")
    assert screen([folder / "img0.png"], tmp_path, model=tiny_model, device="cpu").counts["ok"] == 1


def test_output_folder_inside_the_input_is_skipped(tiny_model, tmp_path):
    noise_png(tmp_path / "a.png", 0)
    for _ in range(2):  # the second run must not screen the first one's thumbnails
        summary = screen([tmp_path], tmp_path / "worklist", model=tiny_model, device="cpu")
        assert summary.counts["total"] == 1


def test_runs_from_a_worker_thread_with_callbacks_there(folder, tiny_model, tmp_path):
    """How the viewer's worklist calls it: from a worker thread, callbacks in that thread."""
    seen_threads, progress, result = set(), [], {}

    def work():
        result["summary"] = screen(
            [folder / "img0.png", folder / "img1.png", folder / "rg1"], tmp_path,
            model=tiny_model, device="cpu", batch_size=1,
            on_row=lambda row: seen_threads.add(threading.get_ident()),
            on_progress=lambda p: (progress.append(p), seen_threads.add(threading.get_ident())))
        result["thread"] = threading.get_ident()

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(timeout=120)
    assert result["summary"].counts["ok"] == 3
    assert seen_threads == {result["thread"]}
    assert [p.done for p in progress] == [1, 2, 3]
    assert progress[-1].total == 3
    assert progress[-1].eta_s == 0


def test_an_empty_shard_writes_an_empty_worklist(tiny_model, tmp_path):
    from chexnet.inference.screen.discovery import shard_of

    noise_png(tmp_path / "a.png", 0)
    empty = f"{1 - shard_of('a.png', 2)}/2"  # the shard that does not hold a.png
    summary = screen([tmp_path / "a.png"], tmp_path / "out", model=tiny_model, shard=empty)
    assert summary.counts["total"] == 0
    assert read_csv(tmp_path / "out" / CSV_NAME) == []
    assert (tmp_path / "out" / CSV_NAME).read_text().startswith("rank,path,status")


def test_heatmap_thumbnail_colours_only_what_the_model_saw(clean_run):
    """RG1 is taller than wide: the model saw a centre crop, so the rows above it stay grey and
    the crop is outlined in yellow; inside it, the CAM's upper half is coloured."""
    out, _, _ = clean_run
    _model, rows = read_worklist(out)
    rg1 = next(r for r in rows if r.path.endswith("rg1"))
    rgb = np.asarray(PILImage.open(rg1.cam_path).convert("RGB")).astype(int)
    grey = np.asarray(PILImage.open(rg1.thumb_path).convert("L"))
    assert rgb.shape[:2] == grey.shape
    assert max(grey.shape) == 256
    colour = np.abs(rgb[..., 0] - rgb[..., 2]) > 40
    assert colour[20:-20].mean() > 0.05
    assert colour[:3, 20:-20].mean() < 0.02  # above the crop box (6.5 of 256 rows)
    yellow = (rgb[..., 0] > 200) & (rgb[..., 1] > 200) & (rgb[..., 2] < 70)  # blends keep b
    assert yellow[10:-10, 0:3].any(axis=1).mean() > 0.8  # the outline's left edge


def test_worklist_files_are_rebuilt_while_the_run_goes(folder, tiny_model, tmp_path):
    """With rebuild_every_s=0 the CSV is rewritten after every batch, so a reader (the viewer,
    a lead watching a long run) sees it grow; each version is complete (atomic replace)."""
    sizes = []

    def seen(_progress):
        csv_path = tmp_path / CSV_NAME
        sizes.append(len(read_csv(csv_path)) if csv_path.exists() else None)

    screen([folder / "img0.png", folder / "img1.png", folder / "img3.png"], tmp_path,
           model=tiny_model, device="cpu", workers=1, batch_size=1, rebuild_every_s=0,
           on_progress=seen)
    assert sizes == [None, 1, 2]
    assert len(read_csv(tmp_path / CSV_NAME)) == 3


@pytest.mark.parametrize("tta", ["none", "five-crop"])
def test_warnings_are_the_engines_own(rg1_uncr, tiny_model, tmp_path, tta):
    """The screener scores through Engine.score: a row carries the gate's warnings and the
    engine's seen-fraction warning, word for word what Engine.predict says."""
    src = tmp_path / "in"
    src.mkdir()
    noise_png(src / "wide.png", seed=3, shape=(200, 500))  # 40% seen
    ds = pydicom.dcmread(rg1_uncr)
    del ds.ViewPosition  # the gate warns: frontal view assumed
    ds.save_as(src / "no_view.dcm")
    screen([src], tmp_path / "out", model=tiny_model, device="cpu", workers=1, tta=tta)
    records = read_journal(tmp_path / "out" / JOURNAL_NAME).records
    engine = Engine(tiny_model, device="cpu", tta=tta)
    expected = {"wide.png": "central 40%" if tta == "none" else None,
                "no_view.dcm": "view position not recorded"}
    for name, needle in expected.items():
        pred = engine.predict_one(load_image(src / name))
        assert records[str(src / name)]["warnings"] == list(pred.warnings)
        said = [w for w in pred.warnings if w != NO_OOD_WARNING]  # the tiny model has no check
        assert (needle is None) == (not said)
        assert needle is None or any(needle in w for w in pred.warnings)
