"""Named errors a user can act on.

Every error raised for bad input is a :class:`ChexnetInputError`. Its ``str()`` is one line that
names the file, says what is wrong and what to do, so a CLI can print it as is and a batch run can
store it as a result row. No message ever contains patient information.
"""

from __future__ import annotations

from pathlib import Path


class ChexnetError(Exception):
    """Base class for all chexnet errors."""


class ChexnetInputError(ChexnetError):
    """An input file cannot be analysed.

    Parameters
    ----------
    path
        The offending file (or folder).
    problem
        What is wrong, in a few words.
    advice
        What the user can do about it.
    """

    default_advice = "check the file, or re-export it from the PACS or modality"

    def __init__(self, path: str | Path | None, problem: str, advice: str | None = None) -> None:
        self.path = None if path is None else Path(path)
        self.problem = problem
        self.advice = advice or self.default_advice
        where = f"{self.path}: " if self.path is not None else ""
        super().__init__(f"{where}{problem} ({self.advice})")


class EmptyFileError(ChexnetInputError):
    """The file has no content."""

    default_advice = "the copy or export probably failed; copy the file again"


class UnrecognisedFileError(ChexnetInputError):
    """The content is neither DICOM, PNG nor JPEG, whatever the suffix says."""

    default_advice = "chexnet reads DICOM (any suffix), PNG and JPEG images"


class CorruptFileError(ChexnetInputError):
    """The file is of a known kind but its structure is damaged (truncated, bad delimiters...)."""

    default_advice = "the file is damaged or truncated; re-export it from the source"


class NotAnImageError(ChexnetInputError):
    """A valid DICOM object that holds no image (structured report, PDF, presentation state...)."""

    default_advice = "open the image instances of the study instead"


class MissingAttributeError(ChexnetInputError):
    """A DICOM image lacks an attribute needed to interpret its pixels."""

    default_advice = "the file does not follow the DICOM standard; re-export it from the source"


class InconsistentPixelDataError(ChexnetInputError):
    """The pixel description and the pixel data disagree (bit depths, lengths, decoded size)."""


class UnsupportedImageError(ChexnetInputError):
    """A well-formed image that chexnet deliberately does not read (palette colour, ...)."""

    default_advice = "chexnet analyses greyscale radiographs"


class DecoderUnavailableError(ChexnetInputError):
    """The pixel data is compressed in a transfer syntax no installed decoder handles."""

    default_advice = (
        "install a decoder plugin for it (pylibjpeg-openjpeg, pylibjpeg-libjpeg, pylibjpeg-rle "
        "are installed with chexnet) or decompress the file, e.g. with dcmtk's dcmdjpeg"
    )


class ImageTooLargeError(ChexnetInputError):
    """The image would need more memory than the configured pixel budget (decompression bomb)."""

    default_advice = "if the image is genuine, raise the limit with --max-pixels"


class ModelPackageError(ChexnetError):
    """A model package is missing, unreadable, or its card disagrees with its graph."""

    def __init__(self, path: str | Path | None, problem: str, advice: str | None = None) -> None:
        self.path = None if path is None else Path(path)
        where = f"{self.path}: " if self.path is not None else ""
        advice = advice or "export the package again with `chexnet export` or pick another --model"
        super().__init__(f"{where}{problem} ({advice})")


class DeviceUnavailableError(ChexnetError):
    """The requested execution device (CUDA, TensorRT) cannot be used on this machine."""


class DicomResultsError(ChexnetError):
    """DICOM results (a structured report, a heat-map secondary capture) cannot be written for
    an image: it was not analysed (there are no results to file), or the output failed."""


class PacsError(ChexnetError):
    """Talking to a PACS failed: what went wrong with which node, and what to do. The text is
    chexnet's own (never a network library's, which can quote query values: patient data)."""

    default_advice = "check the node's address, AE titles and the network"

    def __init__(self, node: str, problem: str, advice: str | None = None) -> None:
        self.node = node
        self.problem = problem
        self.advice = advice or self.default_advice
        super().__init__(f"{node}: {problem} ({self.advice})")


class PacsConnectionError(PacsError):
    """Nothing answers at the node's address (connection refused, unknown host, no route)."""

    default_advice = "check the host and port, and that the PACS is running"


class PacsRejectedError(PacsError):
    """The PACS refused the association or the request (unknown calling AE title, ...)."""

    default_advice = ("ask the PACS administrator to declare this viewer's calling AE title, "
                      "or correct the AE titles")


class PacsTimeoutError(PacsError):
    """The node accepted the connection but did not answer in time."""

    default_advice = "the PACS is busy or this is not a DICOM port; try again or raise the timeout"


class PacsTlsError(PacsError):
    """The TLS handshake failed (certificate not trusted, TLS not offered by the node)."""

    default_advice = ("check that the node speaks TLS on this port and that its certificate "
                      "is trusted")


class StudyNotFoundError(PacsError):
    """The PACS has no study with this UID (or returned none of its images)."""

    default_advice = "search again: the study may have been moved or deleted"


class RetrievalCancelled(ChexnetError):
    """The user cancelled a retrieval: what arrived whole stays in the cache, the study is not
    marked complete."""
