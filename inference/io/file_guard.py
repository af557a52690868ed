"""The one guard around everything chexnet does with one input file.

Every flow that reads a file (``chexnet predict``, a screening decode worker, the viewer's
loader, ``scan()``'s header probe) runs its per-file work inside :func:`guarded_file`, which
promises three things:

* **Only named errors leave it.** A :class:`~chexnet.inference.errors.ChexnetInputError` passes
  through; anything else a library raises on a damaged file (pydicom, Pillow, numpy, a decoder
  plugin) becomes a :class:`~chexnet.inference.errors.CorruptFileError` naming the file, so one
  bad file costs that file only, never a batch.
* **No library text reaches a message or a log.** pydicom quotes the raw bytes of the element it
  failed on, which can be a patient's name. A message is built from chexnet's own words and
  non-identifying facts only: :func:`library_error_facts` keeps the exception's type and the
  DICOM tags it names (a tag number is never patient data) and drops its text.
* **Nothing is printed behind chexnet's back.** pydicom and Pillow warnings and log records
  raised while the guard is active are captured (into :attr:`FileNotes.notes`, in chexnet's
  words), not written to stderr: pydicom logs a full traceback when a decoder plugin fails, and
  its validation warnings echo header values.

Warnings are caught with ``catch_warnings``, which is process-wide state: guarded sections run
one thread at a time (:mod:`.warning_guard`'s lock; the viewer's loader threads take turns,
screening workers are processes). Library log records go to a process-wide handler that routes
them to the guard of the thread that logged them; outside a guard they are dropped (they cannot
be shown safely).
"""

from __future__ import annotations

import logging
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.datadict import keyword_for_tag

from chexnet.inference.errors import ChexnetInputError, CorruptFileError, UnrecognisedFileError
from chexnet.inference.io.warning_guard import guarded_warnings

#: Loggers of the libraries that read files for chexnet. Their records can quote file content.
LIBRARY_LOGGERS = ("pydicom", "PIL", "pylibjpeg", "openjpeg", "libjpeg", "rle")
#: Where library warnings come from (their ``filename``), to tell them from numpy's.
LIBRARY_PATH_PARTS = ("pydicom", "PIL", "pylibjpeg", "openjpeg", "libjpeg")
_TAG = re.compile(r"\(([0-9A-Fa-f]{4}),\s*([0-9A-Fa-f]{4})\)")
_TAG_INT = re.compile(r"\b0x([0-9A-Fa-f]{8})\b")

#: Library warnings chexnet can say in its own words: (lower-case fragment, what to say).
KNOWN_WARNINGS = (
    ("before delimiter", "the file ends before a sequence or item delimiter (truncated)"),
    ("end of file", "the file ends before its data does (truncated)"),
    ("unexpected end", "the file ends before its data does (truncated)"),
    ("excess padding", "the pixel data is longer than the image size in the header needs"),
    ("expected explicit vr, but found implicit", "the header's VR encoding differs from its "
                                                 "transfer syntax (read as found)"),
    ("expected implicit vr, but found explicit", "the header's VR encoding differs from its "
                                                 "transfer syntax (read as found)"),
    ("unknown vr", "a header element has an unknown value representation"),
    ("invalid value for vr", "a header value does not follow the DICOM standard"),
    ("exceeds the maximum length", "a header value is longer than the DICOM standard allows"),
    ("decompression bomb", "the image is very large"),
    ("truncated", "the file is truncated"),
)
GENERIC_NOTE = "the file reader reported a non-standard detail in this file"


@dataclass
class FileNotes:
    """What the libraries said about one file, in chexnet's words (deduplicated, in order)."""

    path: Path
    notes: list[str] = field(default_factory=list)

    def add(self, note: str) -> None:
        if note not in self.notes:
            self.notes.append(note)


_local = threading.local()


def _collector() -> FileNotes | None:
    stack = getattr(_local, "stack", None)
    return stack[-1] if stack else None


class _LibraryRecords(logging.Handler):
    """Route library log records to the active guard of their thread (as a note); drop them
    elsewhere."""

    def emit(self, record: logging.LogRecord) -> None:
        notes = _collector()
        if notes is not None and record.levelno >= logging.WARNING:
            notes.add(note_for(record.getMessage()))


def note_library_warning(text: str) -> None:
    """Record a library warning caught elsewhere (e.g. by ``catch_warnings``) as a note of the
    active guard; nothing happens outside a guard."""
    notes = _collector()
    if notes is not None:
        notes.add(note_for(text))


def _install() -> None:
    handler = _LibraryRecords()
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.propagate = False  # the root logger's handlers would print the raw text


_install()


def note_for(text: str) -> str:
    """A library warning's text -> what chexnet says about it (never the text itself)."""
    low = text.lower()
    for fragment, said in KNOWN_WARNINGS:
        if fragment in low:
            return said
    tags = tags_named(text)
    return f"{GENERIC_NOTE} ({tags})" if tags else GENERIC_NOTE


def tags_named(text: str) -> str:
    """The DICOM tags a library message names, as ``(gggg,eeee) Keyword``: facts, not values."""
    found: list[int] = [int(g + e, 16) for g, e in _TAG.findall(text)]
    found += [int(t, 16) for t in _TAG_INT.findall(text)]
    out = []
    for tag in dict.fromkeys(found):
        keyword = keyword_for_tag(tag)
        out.append(f"({tag >> 16:04X},{tag & 0xFFFF:04X}){' ' + keyword if keyword else ''}")
    return ", ".join(out[:3])


def library_error_facts(err: BaseException) -> str:
    """What may be said of a library's exception: its type and the tags its text names."""
    tags = tags_named(str(err))
    return f"{type(err).__name__} at {tags}" if tags else type(err).__name__


@contextmanager
def guarded_file(path: str | Path) -> Iterator[FileNotes]:
    """Run one file's work: library output captured into the yielded notes; every exception
    other than a named error (or ``KeyboardInterrupt``) turned into one, PHI-free."""
    path = Path(path)
    notes = FileNotes(path)
    stack = _local.__dict__.setdefault("stack", [])
    stack.append(notes)
    try:
        with guarded_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield notes
            finally:
                for w in caught:
                    if any(lib in str(w.filename) for lib in LIBRARY_PATH_PARTS):
                        notes.add(note_for(str(w.message)))
                    # else: numpy's RuntimeWarnings on a damaged image (NaN casts...): the
                    # sanity gate names what they mean; their text is dropped
    except ChexnetInputError:
        raise
    except FileNotFoundError:
        if path.is_symlink():
            raise UnrecognisedFileError(path, "is a broken link (its target does not exist)",
                                        "check the link, or copy the file itself") from None
        raise UnrecognisedFileError(path, "cannot be read: no such file (removed while "
                                          "reading?)", "check the path") from None
    except PermissionError:
        raise UnrecognisedFileError(path, "cannot be read: permission denied",
                                    "check the file's permissions") from None
    except MemoryError:
        raise CorruptFileError(path, "out of memory while reading this file",
                               "the image is far larger than a radiograph, or the machine is "
                               "short of memory; free memory or lower --workers") from None
    except RecursionError:
        raise CorruptFileError(path, "nested too deeply to be a real image",
                               "the file is malformed or hostile; do not open it") from None
    except Exception as err:
        raise CorruptFileError(path, f"the file is damaged ({library_error_facts(err)})") \
            from None
    finally:
        stack.pop()
