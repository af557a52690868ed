"""Write one analysed image's DICOM results: the heat-map Secondary Capture and the Structured
Report, each ``<SOPInstanceUID>.dcm`` in one flat output folder (the folder a DICOM node sends
with C-STORE as it is), each written whole or not at all (:func:`atomic_output`).

The SC is built first: the SR lists it as evidence. Both are written only when both were built,
so a failure leaves neither.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from chexnet.inference.atomic_file import atomic_output
from chexnet.inference.dicom_out.sc import CAM_OPACITY, CAM_THRESHOLD, build_sc
from chexnet.inference.dicom_out.source import result_uids, source_dataset, source_identity
from chexnet.inference.dicom_out.sr import build_sr
from chexnet.inference.errors import ChexnetInputError, DicomResultsError
from chexnet.inference.io.image import Image
from chexnet.inference.io.image_file import ImageFile, open_image_file
from chexnet.inference.io.warning_guard import guarded_warnings
from chexnet.inference.package.card import ModelCard
from chexnet.inference.render.overlay import overlay_base
from chexnet.inference.scoring.prediction import ModelId, Prediction


@dataclass(frozen=True)
class DicomResults:
    """The two files written for one image."""

    sr: Path
    sc: Path


def write_dicom_results(source: ImageFile | Path, image: Image, prediction: Prediction,
                        model: ModelId, card: ModelCard, out_dir: Path) -> DicomResults:
    """Write ``prediction``'s Structured Report and heat-map Secondary Capture for ``image``
    (loaded from ``source``: an opened file, or its path, whose header is then read again) into
    ``out_dir``. Raises :class:`DicomResultsError` for a prediction that is not analysed (there
    is nothing to file) or a source that cannot be read again."""
    _require_analysed(prediction)
    if not isinstance(source, ImageFile):
        source = _reopen(Path(source))
    return write_results(source, overlay_base(image.display_u8()), prediction, model, card,
                         out_dir)


def write_results(opened: ImageFile, base: np.ndarray, prediction: Prediction, model: ModelId,
                  card: ModelCard, out_dir: Path, *, cam_threshold: float = CAM_THRESHOLD,
                  opacity: float = CAM_OPACITY) -> DicomResults:
    """:func:`write_dicom_results` from the display rendering already downscaled (``base``,
    :func:`~chexnet.inference.render.overlay.overlay_base`): what a screening decode worker
    sends back instead of the full-size image."""
    _require_analysed(prediction)
    source = source_dataset(opened)
    uids = result_uids(source_identity(opened, source), source, model, prediction)
    software = software_version()
    try:
        # highdicom warns about the source's values by quoting them (a referring physician's
        # name): patient data, so its warnings go nowhere
        with guarded_warnings():
            warnings.simplefilter("ignore")
            sc = build_sc(source, base, prediction, model, card, uids, software,
                          cam_threshold=cam_threshold, opacity=opacity)
            sr = build_sr(source, sc, prediction, model, card, uids, software)
    except (ValueError, TypeError, AttributeError) as err:  # a header highdicom refuses
        # the type only: a library's message can quote the header's values (patient data)
        raise DicomResultsError(f"{opened.path}: DICOM results not built "
                                f"({type(err).__name__} in the source's header)") from None
    out_dir.mkdir(parents=True, exist_ok=True)
    return DicomResults(sr=_write(sr, out_dir), sc=_write(sc, out_dir))


def software_version() -> str:
    """chexnet's version, for Software Versions of every object written."""
    try:
        return f"chexnet {version('chexnet')}"
    except PackageNotFoundError:
        return "chexnet"


def _write(ds: Dataset, out_dir: Path) -> Path:
    target = out_dir / f"{ds.SOPInstanceUID}.dcm"
    with atomic_output(target) as fh:
        ds.save_as(fh, enforce_file_format=True)
    return target


def _require_analysed(prediction: Prediction) -> None:
    if not prediction.analysed or prediction.probabilities is None:
        raise DicomResultsError(f"{prediction.path}: not analysed, no DICOM results to write")


def _reopen(path: Path) -> ImageFile:
    try:
        return open_image_file(path)
    except ChexnetInputError as err:
        raise DicomResultsError(f"DICOM results not written: {err}") from None
