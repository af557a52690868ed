"""A DICOM file parsed once: its header when the file is opened, the rest when it is loaded.

``scan()`` needs a file's header (UIDs, view, numbers) and the viewer's metadata panel shows it;
only a load needs the pixel data. So a file opened for later is parsed in two parts that never
overlap: the header, up to the pixel data element, when it is opened (:func:`read_dicom_header`),
and the rest, from where the header stopped, when it is loaded (:func:`read_full_dataset`, as
often as it is loaded: the rest is never kept). A file opened to be loaded at once
(``with_pixels=True``) has its rest read at once, from the same open file. The parse always stops
at the pixel data first, so that the element's length is checked against the image the header
describes before a byte of it is read (:func:`~.dicom_checks.check_pixel_data_length`). The
guards of :mod:`.dicom_checks` run on the part they concern, so each file is refused by the same
named error, with the same message, as by one full parse.

pydicom's ``defer_size`` (parse everything, read large values on access) was the other way to
parse once. It is not used: it still reads every byte of encapsulated (JPEG 2000) pixel data while
parsing the header, so damage there would be found by ``scan()`` rather than the load; it cannot
defer values in a deflated body; and every walk over the dataset (the sequence depth guard, the
header rows) would read the deferred values back in.
"""

from __future__ import annotations

import os
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

from pydicom.dataelem import RawDataElement
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_dataset, read_partial
from pydicom.tag import BaseTag
from pydicom.uid import DeflatedExplicitVRLittleEndian

from chexnet.inference.errors import (
    CorruptFileError,
    EmptyFileError,
    ImageTooLargeError,
    UnrecognisedFileError,
)
from chexnet.inference.io.dicom_checks import (
    DEFAULT_MAX_INFLATED_BYTES,
    PARSE_ERRORS,
    check_inflated_size,
    check_not_truncated,
    check_sequence_depth,
    file_transfer_syntax,
    raise_on_corruption_warnings,
)
from chexnet.inference.io.file_guard import library_error_facts
from chexnet.inference.io.pixel_checks import check_pixel_data_length
from chexnet.inference.io.sniff import HEAD_BYTES, has_dicom_preamble
from chexnet.inference.io.warning_guard import guarded_warnings

#: Largest element other than the pixel data read (ICC profiles and vendor blobs are a few MB).
MAX_ELEMENT_BYTES = 16 << 20
#: Largest file parsed: the pixel data budget and room for the rest.
MAX_FILE_BYTES = 1 << 30
#: Float Pixel Data, Double Float Pixel Data, Pixel Data: where pydicom's stop_before_pixels
#: stops, and so where the header ends.
PIXEL_DATA_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})


@dataclass(frozen=True)
class DicomHeader:
    """A DICOM file's header, parsed once: every top-level element before its pixel data (all of
    them when read ``with_pixels``).

    ``dataset`` holds patient data (the metadata panel shows it): it is left out of the repr and
    must never reach a log or a report. Every load of the file reads from it and changes nothing
    in it (the rest goes into a new dataset, a missing transfer syntax into a copy of the meta).
    """

    path: Path
    dataset: FileDataset = field(repr=False, compare=False)
    has_preamble: bool
    #: File offset of the pixel data element the parse stopped at; ``None``: the parse reached the
    #: end of the dataset, the header is all of it.
    pixel_data_offset: int | None
    #: (implicit VR, little endian) the body was read with, to read the rest on its own; ``None``
    #: when the rest cannot be read on its own (a deflated body, or no element says how it was
    #: read): a load then parses the whole file again.
    body_encoding: tuple[bool, bool] | None
    #: (size, modification time in ns) of the file when parsed.
    file_state: tuple[int, int]

    def is_current(self) -> bool:
        """Whether the file is still the one parsed (same size and modification time)."""
        try:
            return _file_state(os.stat(self.path)) == self.file_state
        except OSError:
            return False


def read_dicom_header(path: Path, *, max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES,
                      opened: BinaryIO | None = None, with_pixels: bool = False) -> DicomHeader:
    """Parse a DICOM file up to its pixel data, refusing by name what the parse reveals: an
    unparseable or damaged structure, a deflate bomb (over ``max_inflated_bytes``).

    ``opened``: the file, already open for reading (it is read from its start); without it the
    file is opened here, and an empty or unreadable one refused first. ``with_pixels``: parse
    the whole file now (for a load that follows at once: one parse, no second read).
    """
    if opened is None:
        try:
            size = path.stat().st_size
        except OSError as err:
            raise CorruptFileError(path, f"cannot be read: {err.strerror}",
                                   "check the path and permissions") from err
        if size == 0:
            raise EmptyFileError(path, "the file is empty")
        with open(path, "rb") as fh:
            return read_dicom_header(path, max_inflated_bytes=max_inflated_bytes, opened=fh,
                                     with_pixels=with_pixels)
    opened.seek(0)
    has_preamble = has_dicom_preamble(opened.read(HEAD_BYTES))
    opened.seek(0)
    deflated = has_preamble and file_transfer_syntax(path) == DeflatedExplicitVRLittleEndian
    if deflated:
        check_inflated_size(path, max_inflated_bytes)  # before the parse inflates it all
    stopped: list[int] = []  # the pixel data element's length, once reached

    size = os.fstat(opened.fileno()).st_size
    if size > MAX_FILE_BYTES:
        raise ImageTooLargeError(path, f"the file is {size:,} bytes, far larger than a "
                                       f"radiograph (at most {MAX_FILE_BYTES:,} are read)",
                                 "the file is not a radiograph, or its size lies")

    def at_pixel_data(tag: BaseTag, vr: str | None, length: int) -> bool:
        if tag in PIXEL_DATA_TAGS:
            stopped.append(length)
            return True
        check_element_length(path, tag, length)
        return False

    # Always stop at the pixel data: its length is checked against the header before a byte
    # of it is read (a 64 x 64 image whose element claims 4 GB is refused, not read).
    ds = _parse(path, opened, has_preamble, at_pixel_data)
    # pydicom leaves the file at the start of the element it stopped at.
    offset = opened.tell() if stopped else None
    st = os.fstat(opened.fileno())
    if stopped:
        check_pixel_data_length(path, ds, stopped[0],
                                None if deflated else st.st_size - offset)
    header = DicomHeader(path=path, dataset=ds, has_preamble=has_preamble,
                         pixel_data_offset=offset,
                         body_encoding=None if deflated else _body_encoding(ds),
                         file_state=_file_state(st))
    if with_pixels and offset is not None:
        return replace(header, dataset=read_full_dataset(header, opened=opened),
                       pixel_data_offset=None)
    return header


def check_header_structure(header: DicomHeader) -> None:
    """The guards a full parse gets, on the header alone (for ``scan()``, which reads no more):
    a bare dataset that holds nothing, a value cut short, sequences nested too deep."""
    _check_structure(header.path, header.dataset, header.has_preamble)


def read_full_dataset(header: DicomHeader, *, opened: BinaryIO | None = None) -> FileDataset:
    """The whole dataset of the file ``header`` was read from: the header and the rest of the
    file (the pixel data and anything after it), read from where the header stopped, with every
    guard a full parse gets. A new dataset each time: the header is not changed. ``opened``: the
    file, already open (it is read from the header's end)."""
    path = header.path
    if header.pixel_data_offset is not None and header.body_encoding is None:
        with open(path, "rb") as fh:  # e.g. a deflated body: parsed whole again (bomb guard ran)
            ds = _parse(path, fh, header.has_preamble, None)
    else:
        rest = {} if header.pixel_data_offset is None else _read_rest(header, opened)
        ds = _with_rest(header.dataset, path, rest)
    _check_structure(path, ds, header.has_preamble)
    return ds


def _parse(path: Path, fh: BinaryIO, has_preamble: bool, stop_when) -> FileDataset:
    with guarded_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = read_partial(fh, stop_when, force=not has_preamble)
            ds.file_meta  # noqa: B018 - force file meta parsing errors to surface here
        except InvalidDicomError as err:
            raise UnrecognisedFileError(path, "not a DICOM file (no DICM marker)") from err
        except RecursionError as err:
            raise CorruptFileError(path, "sequences are nested too deeply to be a real image",
                                   "the file is malformed or hostile; do not open it") from err
        except PARSE_ERRORS as err:
            raise CorruptFileError(path, "the DICOM structure is damaged "
                                         f"({library_error_facts(err)})") from err
    raise_on_corruption_warnings(path, caught)
    return ds


def _read_rest(header: DicomHeader, opened: BinaryIO | None) -> dict:
    """The elements from the pixel data element to the end of the file, read as the header's
    parse would have read them had it gone on."""
    implicit, little = header.body_encoding
    with guarded_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with nullcontext(opened) if opened else open(header.path, "rb") as fh:
                fh.seek(header.pixel_data_offset)
                # at_top_level=False: pydicom guesses the VR encoding again at the first element
                # of a top-level dataset, and the length of implicit VR pixel data can look like
                # a VR; the body's encoding is known.
                rest = read_dataset(fh, implicit, little, at_top_level=False,
                                    parent_encoding=header.dataset.original_character_set,
                                    stop_when=_lengths_checked(header.path))
        except RecursionError as err:
            raise CorruptFileError(header.path, "sequences are nested too deeply to be a real "
                                   "image", "the file is malformed or hostile; do not open it") \
                from err
        except PARSE_ERRORS as err:
            raise CorruptFileError(header.path, "the DICOM structure is damaged "
                                                f"({library_error_facts(err)})") from err
    raise_on_corruption_warnings(header.path, caught)
    return dict(rest.items())


def _lengths_checked(path: Path):
    """A ``stop_when`` for the rest of a file that never stops, but refuses an element after
    the pixel data (trailing padding, say) whose length is not believable."""
    def check(tag: BaseTag, vr: str | None, length: int) -> bool:
        if tag not in PIXEL_DATA_TAGS:  # the pixel data's was checked with the header
            check_element_length(path, tag, length)
        return False

    return check


def check_element_length(path: Path, tag: BaseTag, length: int) -> None:
    """Refuse, before it is read, an element other than the pixel data that claims more than
    :data:`MAX_ELEMENT_BYTES` (a header value that lies: read and decoded as text, a 1 GB one
    cost 4 GB of memory)."""
    if length != 0xFFFFFFFF and length > MAX_ELEMENT_BYTES:
        raise CorruptFileError(path, f"element {tag} claims {length:,} bytes; no header value "
                                     "of a radiograph is that long",
                               "the file is damaged or hostile; re-export it from the source")


def _with_rest(head: FileDataset, path: Path, rest: dict) -> FileDataset:
    """A new dataset of the header's elements then ``rest``'s, as one parse would have built it
    (same element order, same encoding); the header's own dataset and file meta stay as they
    are (the load writes a missing transfer syntax into its file meta)."""
    implicit, little = head.original_encoding
    ds = FileDataset(str(path), {**dict(head.items()), **rest}, preamble=head.preamble,
                     file_meta=FileMetaDataset(dict(head.file_meta.items())),
                     is_implicit_VR=implicit, is_little_endian=little)
    ds.set_original_encoding(implicit, little, head.original_character_set)
    return ds


def _check_structure(path: Path, ds: FileDataset, has_preamble: bool) -> None:
    if not has_preamble and len(ds) == 0:
        raise UnrecognisedFileError(path, "not a DICOM file")
    check_not_truncated(path, ds)
    check_sequence_depth(path, ds)


def _body_encoding(ds: FileDataset) -> tuple[bool, bool] | None:
    """The encoding the body was read with, as its elements record it (pydicom may have switched
    from the transfer syntax's at the first element); ``None`` when no element records it."""
    for tag in ds.keys():  # noqa: SIM118 - iterating a Dataset converts every element
        elem = ds.get_item(tag, keep_deferred=True)
        if isinstance(elem, RawDataElement):
            return (elem.is_implicit_VR, elem.is_little_endian)
    return None


def _file_state(st: os.stat_result) -> tuple[int, int]:
    return (st.st_size, st.st_mtime_ns)
