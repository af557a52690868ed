"""Screening with ``dicom_out``: one scored image's DICOM results, written in the main process
from what its decode worker sent (the rendering for the heat map) and the source's header, read
again here (header only: the worker's parsed header does not cross the process boundary, and
patient data stays out of the pipe).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from chexnet.inference.dicom_out.results import write_results
from chexnet.inference.errors import ChexnetInputError, DicomResultsError
from chexnet.inference.io.image_file import open_image_file
from chexnet.inference.scoring.engine import Engine
from chexnet.inference.scoring.prediction import Prediction

log = logging.getLogger(__name__)


def dicom_files(path: Path, base: np.ndarray | None, prediction: Prediction, engine: Engine,
                out_dir: Path) -> dict:
    """The journal fields of an analysed image's DICOM results: ``dicom_sr`` and ``dicom_sc``
    (absolute paths: the folder may be anywhere), or ``dicom_error`` when they could not be
    written (the file changed or vanished since it was decoded, a header highdicom refuses,
    a full disk): the image's result stands, only its DICOM copy is missing."""
    try:
        if base is None:
            raise DicomResultsError(f"{path}: no rendering came back from the decoder")
        written = write_results(open_image_file(path), base, prediction, engine.model_id,
                                engine.card, out_dir)
    except (DicomResultsError, ChexnetInputError, OSError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        log.warning("DICOM results for %s not written: %s", path.name, reason)
        return {"dicom_sr": None, "dicom_sc": None, "dicom_error": reason}
    return {"dicom_sr": str(written.sr.absolute()), "dicom_sc": str(written.sc.absolute())}
