"""Screening step 2, run in the decode worker processes: one file -> what the model needs.

A worker reads one file, hashes it (duplicate detection), decodes it (JPEG 2000 and JPEG at the
reduced resolution the model needs: :mod:`chexnet.inference.scoring.decode_size`) and prepares it
for the model with :func:`chexnet.inference.scoring.prepare.prepare_input` (the intended-use
gate and the 8-bit model crop(s): step one of ``Engine.predict``; the main process runs step
two, ``Engine.score``). It returns only what the main process needs: that
:class:`~chexnet.inference.scoring.prepare.PreparedInput` (a 224 x 224 crop before mean/std,
50 kB; the ten crops of test-time augmentation, 0.5 MB), a small grey thumbnail for the
report, the UIDs and the gate's reasons and warnings. Full-resolution pixels never cross the
process boundary (a 1955 x 1841 CR is 7 MB as uint16), which keeps the pipe and the main
process's memory small.
With test-time augmentation the image is decoded at full resolution, since the crops are
defined on it.

Everything here must be picklable and import no ONNX Runtime: workers only decode.

Test-only fault injection: the environment variable ``CHEXNET_TEST_DECODE_FAULTS`` (e.g.
``crash=segv_*;hang=slow_*;kill=big_*``, file-name globs) makes this worker segfault, hang, or
be SIGKILLed as the kernel's out-of-memory killer does, on matching files, so the tests can
prove such a decoder fails that file only. It is read nowhere else and does nothing when unset.
"""

from __future__ import annotations

import fnmatch
import logging
import math
import os
import signal
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from chexnet.inference.atomic_file import atomic_output
from chexnet.inference.errors import ChexnetInputError, NotAnImageError
from chexnet.inference.io.file_guard import guarded_file
from chexnet.inference.io.image import Image
from chexnet.inference.io.image_file import ImageFile, open_image_file
from chexnet.inference.io.uids import DicomUids
from chexnet.inference.package.hashing import sha256_file
from chexnet.inference.preprocessing import PreprocessSpec
from chexnet.inference.priors.identity import StudyIdentity, identity_of_file
from chexnet.inference.render.overlay import MAX_OVERLAY_SIDE, overlay_base
from chexnet.inference.scoring.decode_size import model_min_side
from chexnet.inference.scoring.file_input import message, read_input
from chexnet.inference.scoring.prepare import PreparedInput
from chexnet.inference.screen.forkserver import die_with_parent

log = logging.getLogger(__name__)

#: Longest side of the report thumbnails (and of the CAM overlays drawn on them).
THUMB_SIDE = 256
FAULTS_ENV = "CHEXNET_TEST_DECODE_FAULTS"
PHI_KEYWORDS = ("PatientName", "PatientID", "PatientBirthDate")


@dataclass(frozen=True)
class DecodeRequest:
    path: str
    spec: PreprocessSpec
    max_pixels: int
    thumb_path: str | None  # where the worker writes the grey thumbnail (JPEG)
    include_phi: bool = False
    tta: str = "none"  # the engine's test-time augmentation (chexnet.inference.scoring.tta)
    sc_base: bool = False  # also return the rendering for a DICOM heat map (--dicom-out)


@dataclass(frozen=True)
class DecodeOutcome:
    """What a worker sends back for one file (small: no full-resolution pixels).

    ``kind`` is ``analyse`` (``prepared`` ready for ``Engine.score``), ``not_analysed`` (the
    gate or the file type says no; ``reasons`` says why) or ``error`` (unreadable; ``reasons``
    holds the message).
    """

    path: str
    kind: str
    sha256: str | None = None
    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    error_type: str | None = None
    uids: DicomUids = field(default_factory=DicomUids)
    image_shape: tuple[int, int] | None = None  # the decoded pixels (crop box, CAM frame)
    full_shape: tuple[int, int] | None = None  # the file's image, when decoded reduced
    prepared: PreparedInput | None = None  # when kind is analyse
    thumb: np.ndarray | None = None
    phi: dict[str, str] | None = None
    decode_s: float = 0.0
    #: The display rendering at most MAX_OVERLAY_SIDE px (uint8), for the DICOM heat map; only
    #: for an analysable image when the request asks (0.4-1 MB: only with --dicom-out).
    sc_base: np.ndarray | None = None
    #: Whose study and when (DICOM: from the header already parsed), for prior matching. PHI:
    #: in memory only; the run journals it keyed (:mod:`chexnet.inference.priors.keys`).
    identity: StudyIdentity | None = None


def worker_init() -> None:
    """Pool initializer: on Linux, ask the kernel to kill this worker when its parent (the fork
    server, or the run itself under spawn) dies, so a killed run (kill -9) leaves no decoder
    behind, however stuck."""
    die_with_parent()


def decode(request: DecodeRequest) -> DecodeOutcome:
    """Worker entry point: never raises for a bad file, returns an ``error`` outcome instead.

    The same per-file path as ``chexnet predict`` and the viewer
    (:func:`~chexnet.inference.scoring.file_input.read_input`, inside the one per-file guard),
    plus the hash, the patient identity (``--include-phi`` only) and the thumbnail."""
    start = time.perf_counter()
    path = Path(request.path)
    _inject_test_fault(path)
    try:
        with guarded_file(path):
            opened = open_image_file(path, with_pixels=True)  # sniffed and parsed once
            sha = sha256_file(path)  # after the header checks: a file they refuse is not read
        outcome = _decode(opened, request, sha)
    except NotAnImageError as err:  # an SR, a PDF, a DICOMDIR: read fine, nothing to screen
        outcome = DecodeOutcome(request.path, "not_analysed", reasons=(message(err),),
                                error_type=type(err).__name__)
    except ChexnetInputError as err:
        outcome = DecodeOutcome(request.path, "error", reasons=(message(err),),
                                error_type=type(err).__name__)
    return _with_time(outcome, time.perf_counter() - start)


def _decode(opened: ImageFile, request: DecodeRequest, sha: str) -> DecodeOutcome:
    reduced_ok = request.tta == "none"  # TTA crops are defined on the full-resolution image
    read = read_input(opened, request.spec, tta=request.tta, max_pixels=request.max_pixels,
                      min_size=model_min_side(request.spec) if reduced_ok else None)
    if read.error is not None:
        raise read.error
    image, prepared = read.image, read.prepared
    common = dict(sha256=sha, uids=image.metadata.uids, image_shape=image.shape,
                  full_shape=image.full_shape if image.is_reduced else None,
                  phi=patient_identity(opened) if request.include_phi else None,
                  identity=study_identity(opened))
    with guarded_file(opened.path):  # thumbnail pixels come from the rendering read_input made
        thumb = make_thumbnail(image.display_u8())
    if request.thumb_path:
        try:
            write_jpeg(thumb, Path(request.thumb_path))
        except OSError as err:  # a full disk costs the report its picture, not the result
            log.warning("thumbnail for %s not written: %s", opened.path.name, err.strerror)
    if not prepared.analyse:
        return DecodeOutcome(request.path, "not_analysed", reasons=prepared.reasons,
                             warnings=prepared.warnings, thumb=thumb, **common)
    base = sc_base(opened, image, request) if request.sc_base else None
    return DecodeOutcome(request.path, "analyse", warnings=prepared.warnings, thumb=thumb,
                         prepared=prepared, sc_base=base, **common)


def sc_base(opened: ImageFile, image: Image, request: DecodeRequest) -> np.ndarray:
    """The rendering a DICOM heat map is drawn on (:func:`overlay_base`). An image decoded at
    the reduced size the model needs (a 1955 px JPEG 2000 at 245 px) is decoded again, at the
    smallest reduction whose long side still reaches MAX_OVERLAY_SIDE: the heat map is read by
    a person, at the size a CAM PNG has."""
    with guarded_file(opened.path):
        if image.is_reduced and image.full_shape is not None:
            short, long = sorted(image.full_shape)
            side = min(short, math.ceil(MAX_OVERLAY_SIDE * short / long))
            image = opened.load(max_pixels=request.max_pixels, min_size=side)
        return overlay_base(image.display_u8())


def make_thumbnail(display_u8: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray:
    pil = PILImage.fromarray(np.ascontiguousarray(display_u8))
    pil.thumbnail((side, side), PILImage.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(pil)


def write_jpeg(pixels: np.ndarray, target: Path, quality: int = 85) -> None:
    """Write atomically, so a killed run never leaves half an image. Not fsynced: a thumbnail
    is a picture in the report, not a result (the journal is), and an fsync per file cost ~1 ms
    of a 55 ms JPEG 2000 decode here."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(target, durable=False) as fh:
        PILImage.fromarray(pixels).save(fh, format="JPEG", quality=quality)


def patient_identity(opened: ImageFile) -> dict[str, str]:
    """Patient name, ID and birth date from the header already parsed (only asked for with
    --include-phi; DICOM only)."""
    if opened.dicom is None:
        return {}
    ds = opened.dicom.dataset
    try:
        return {k: str(ds.get(k, "") or "") for k in PHI_KEYWORDS}
    except Exception:  # the image itself was readable; unreadable PHI is no reason to fail it
        return {}


def study_identity(opened: ImageFile) -> StudyIdentity | None:
    """A DICOM's identity for prior matching (PNG/JPEG: the main process looks it up in the
    labels CSV); None when the header's values cannot be read."""
    if opened.dicom is None:
        return None
    try:
        return identity_of_file(opened)
    except Exception:  # the image itself was readable; an unreadable ID is no reason to fail it
        return None


def _with_time(outcome: DecodeOutcome, seconds: float) -> DecodeOutcome:
    return replace(outcome, decode_s=seconds)


def _inject_test_fault(path: Path) -> None:
    spec = os.environ.get(FAULTS_ENV)
    if not spec:
        return
    for item in spec.split(";"):
        action, _, pattern = item.partition("=")
        if pattern and fnmatch.fnmatch(path.name, pattern):
            if action == "crash":
                import ctypes

                ctypes.string_at(0)  # SIGSEGV, as a broken native decoder would
            elif action == "hang":
                time.sleep(3600)
            elif action == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
