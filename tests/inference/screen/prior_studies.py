"""Analysable DICOM studies of made-up patients, for the screening-with-priors tests: the real
RG1 chest CR (pydicom-data), reduced 3x, pixels varied per study so their scores differ; and
the report's prior images, read from report.html and rendered independently."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image as PILImage
from pydicom.uid import generate_uid

from chexnet.inference import Engine, load_image
from chexnet.inference.render.cam import normalise_cam
from chexnet.inference.render.overlay import compose_overlay
from chexnet.inference.screen.journal import JOURNAL_NAME, read_journal


def rg1_study(src: Path, target: Path, *, variant: int, patient: str = "PAT-1",
              issuer: str | None = None, date: str | None = None) -> Path:
    ds = pydicom.dcmread(src)
    pixels = ds.pixel_array[::3, ::3].astype(np.int32)
    rows, cols = pixels.shape
    y = np.linspace(0, 1, rows)[:, None]
    pixels = pixels + (variant * 900 * y * np.ones((1, cols))).astype(np.int32)
    ds.PixelData = np.clip(pixels, 0, 2 ** ds.BitsStored - 1).astype(np.uint16).tobytes()
    ds.Rows, ds.Columns = rows, cols
    for key in ("PixelSpacing", "ImagerPixelSpacing"):
        if key in ds and all(float(v) > 0 for v in ds[key].value):
            ds[key].value = [float(v) * 3 for v in ds[key].value]
        elif key in ds:  # RG1 carries 0\0, which dciodvfy calls an error
            del ds[key]
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.PatientID = patient
    if issuer is not None:
        ds.IssuerOfPatientID = issuer
    ds.StudyDate, ds.StudyTime = (date, "120000") if date else ("", "")  # Type 2: empty
    target.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(target, enforce_file_format=True)
    return target


def report_row(out: Path, path: Path) -> str:
    """The HTML of ``path``'s row in the output folder's report.html."""
    html = (out / "report.html").read_text()
    rows = [chunk for chunk in html.split("<tr>") if f"<td>{path}<" in chunk]
    assert len(rows) == 1, path
    return rows[0].split("</tr>")[0]


def prior_images(row_html: str) -> tuple[str, str, str]:
    """(the prior thumbnail's file, its heat map's file, the finding in the heat map's alt)."""
    thumb = re.search(r'<img[^>]* src="([^"]+)" alt="prior">', row_html)
    cam = re.search(r'<img[^>]* src="([^"]+)" alt="prior heatmap ([^"]+)">', row_html)
    assert thumb, row_html
    assert cam, row_html
    return thumb.group(1), cam.group(1), cam.group(2)


def check_prior_heatmap(out: Path, model: Path, current: Path, prior: Path) -> str:
    """The prior heat map of ``current``'s row shows the row's own heat-map finding and equals
    the independent rendering of the prior's CAM for it, and not for another finding."""
    row = report_row(out, current)
    own_finding = next(r for r in read_journal(out / JOURNAL_NAME).records.values()
                   if r["path"] == str(current))["cam_finding"]
    thumb, cam, finding = prior_images(row)
    assert finding == own_finding
    assert f"heat map: {finding}<" in row
    shown = pixels(out / cam)
    expected = independent_heatmap(model, prior, out / thumb, finding)
    assert shown.shape == expected.shape
    diff = np.abs(shown - expected)
    # the only loss: the grid is kept as float16 (~1e-4 of the normalised scale)
    assert diff.mean() < 0.3, diff.mean()
    assert (diff > 24).mean() < 1e-3, (diff > 24).mean()
    pred = Engine(model, device="cpu").predict_one(load_image(prior))
    others = [lb for lb in pred.labels if lb != finding
              and np.abs(normalise_cam(pred.cam(lb)) - normalise_cam(pred.cam(finding))).max()
              > 0.3]
    assert others  # the test can tell the findings apart
    other = np.abs(shown - overlay_jpeg(pred, out / thumb, others[0])).mean()
    assert other > max(1.0, 5 * diff.mean()), (other, diff.mean())
    return row


def independent_heatmap(model: Path, prior: Path, thumb: Path, finding: str) -> np.ndarray:
    """The prior's heat map of ``finding`` rendered apart from the screener: an Engine
    prediction of the prior file, overlaid on the thumbnail by chexnet.inference.render at the
    report's threshold and opacity, saved as the report's JPEGs are and read back."""
    pred = Engine(model, device="cpu").predict_one(load_image(prior))
    return overlay_jpeg(pred, thumb, finding)


def overlay_jpeg(pred, thumb: Path, finding: str) -> np.ndarray:
    with PILImage.open(thumb) as im:
        grey = np.asarray(im.convert("L"))
    rgb = compose_overlay(grey, pred.cam(finding), pred.crop_box, pred.image_shape,
                          threshold=0.5, opacity=0.5)
    buf = io.BytesIO()
    PILImage.fromarray(rgb).save(buf, format="JPEG", quality=85)
    return pixels(buf)


def pixels(source) -> np.ndarray:
    with PILImage.open(source) as im:
        return np.asarray(im.convert("RGB"), dtype=np.int16)
