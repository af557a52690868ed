"""One input file, from its path to what the model needs, inside the one per-file guard.

:func:`read_input` is the per-file path that ``chexnet predict``, the viewer and a screening
decode worker share: open (sniff, parse the header), load the pixels, render them through the
display pipeline, gate and crop them (:func:`~.prepare.prepare_input`), all inside
:func:`~chexnet.inference.io.file_guard.guarded_file`. It never raises for a bad file: the
outcome is an analysable input, a not-analysed one (the gate's reasons, or an object that holds
no image: a structured report, a PDF), or a named error. What the file readers said about the
file, in chexnet's words, is among the image's warnings, so among those next to its scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chexnet.inference.errors import ChexnetInputError, NotAnImageError
from chexnet.inference.io.dicom_reader import DEFAULT_MAX_PIXELS
from chexnet.inference.io.file_guard import guarded_file
from chexnet.inference.io.image import Image
from chexnet.inference.io.image_file import ImageFile, open_image_file
from chexnet.inference.io.study import Instance
from chexnet.inference.preprocessing import PreprocessSpec
from chexnet.inference.scoring.prepare import PreparedInput, prepare_input

#: :attr:`FileInput.kind` values.
ANALYSE, NOT_ANALYSED, ERROR = "analyse", "not_analysed", "error"


@dataclass(frozen=True)
class FileInput:
    """What :func:`read_input` made of one file.

    ``kind``: :data:`ANALYSE` (``prepared`` is ready for ``Engine.score``), :data:`NOT_ANALYSED`
    (``reasons`` says why; ``prepared`` too when an image was read and the gate refused it) or
    :data:`ERROR` (``error``: a named error; its message names the file and what to do).
    """

    path: Path
    kind: str
    image: Image | None = None
    prepared: PreparedInput | None = None
    error: ChexnetInputError | None = None
    reasons: tuple[str, ...] = ()

    @property
    def warnings(self) -> tuple[str, ...]:
        return () if self.prepared is None else self.prepared.warnings


def read_input(source: str | Path | ImageFile | Instance, spec: PreprocessSpec, *,
               tta: str = "none", max_pixels: int = DEFAULT_MAX_PIXELS,
               min_size: int | None = None) -> FileInput:
    """Read one file (a path, a file already opened, or a scanned instance) and prepare it for
    a model with preprocessing ``spec``; never raises for what is wrong with the file."""
    path = Path(source.path if isinstance(source, ImageFile | Instance) else source)
    try:
        with guarded_file(path):
            opened = source if isinstance(source, ImageFile | Instance) else \
                open_image_file(path, with_pixels=True)
            image = opened.load(max_pixels=max_pixels, min_size=min_size)
            image.display_u8()  # rendered here, so a failure to render is this file's
            prepared = prepare_input(image, spec, tta)
    except NotAnImageError as err:
        return FileInput(path, NOT_ANALYSED, error=err, reasons=(message(err),))
    except ChexnetInputError as err:
        return FileInput(path, ERROR, error=err, reasons=(message(err),))
    return FileInput(path, ANALYSE if prepared.analyse else NOT_ANALYSED, image=image,
                     prepared=prepared, reasons=prepared.reasons)


def message(err: ChexnetInputError) -> str:
    """A named error's message without the file name (for a row or a line that names it)."""
    return " ".join(f"{err.problem} ({err.advice})".split())
