"""Run fuzz cases through chexnet's per-file entry points and classify every outcome.

The property, per case and entry point: the outcome is a result, a not-analysed result or a
named error (a :class:`~chexnet.inference.errors.ChexnetInputError` subclass); no other exception
escapes; no planted PHI is in any message; nothing reaches stderr (fd 2) and no Python warning
escapes; the peak resident memory stays under :data:`MEMORY_LIMIT_MB`.

Entry points, in-process: ``scan([path])`` (what the viewer and ``chexnet predict`` run first),
``read_input(path, spec)`` (``chexnet predict`` and the viewer, per file), ``decode(request)``
(a ``chexnet screen`` worker, per file) and, optionally, ``Engine.score`` on what read_input made
analysable.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from chexnet.inference.errors import ChexnetInputError, NotAnImageError
from chexnet.inference.io.dicom_reader import DEFAULT_MAX_PIXELS
from chexnet.inference.io.study import scan
from chexnet.inference.scoring.file_input import read_input
from chexnet.inference.screen.decode import DecodeRequest, decode
from tests.fuzz.capture import captured
from tests.fuzz.mutations import Case, phi_hits

RESULT, NOT_ANALYSED, NAMED_ERROR, ESCAPE = "result", "not_analysed", "named_error", "ESCAPE"
KINDS = (RESULT, NOT_ANALYSED, NAMED_ERROR, ESCAPE)
ENTRIES = ("scan", "read_input", "decode", "score")
MEMORY_LIMIT_MB = 1500.0
#: What one entry point may add to the resident memory of the process it runs in: a fresh
#: decode worker or ``chexnet predict`` holds ~300 MB before its first file, so a case that adds
#: more than this would take such a process over MEMORY_LIMIT_MB.
MEMORY_GROWTH_LIMIT_MB = MEMORY_LIMIT_MB - 300.0
SLOW_S = 5.0


def _named_error_names() -> frozenset[str]:
    found, todo = set(), [ChexnetInputError]
    while todo:
        cls = todo.pop()
        found.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return frozenset(found)


@dataclass
class EntryOutcome:
    entry: str
    kind: str
    exc_type: str | None = None
    where: str = ""  # for an escape: the top chexnet frame and the raising frame (no PHI)
    phi: tuple[str, ...] = ()
    stderr: str = ""  # may hold PHI: redact before showing
    warnings: tuple[str, ...] = ()
    log_records: tuple[str, ...] = ()
    peak_rss_mb: float = 0.0
    growth_mb: float = 0.0
    seconds: float = 0.0


@dataclass
class CaseOutcome:
    case: Case
    entries: list[EntryOutcome] = field(default_factory=list)


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/work/main/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    parts = Path(filename).parts
    return "/".join(parts[-3:])


def frames(err: BaseException) -> str:
    """Where an exception came from: the last chexnet frame and the frame that raised."""
    tb = traceback.extract_tb(err.__traceback__)
    if not tb:
        return ""
    ours = [f for f in tb if "/inference/" in f.filename or "/chexnet/" in f.filename]
    last = tb[-1]
    raised = f"{_short(last.filename)}:{last.lineno} in {last.name}"
    if not ours:
        return f"raised at {raised}"
    top = ours[-1]
    return f"chexnet {_short(top.filename)}:{top.lineno} in {top.name}; raised at {raised}"


def _scan(case: Case, ctx: dict) -> tuple[str, str | None, list[str]]:
    res = scan([case.path])
    msgs = [str(e) for e in res.skipped]
    for study in res.studies:
        for inst in study.instances:
            msgs += list(inst.file.notes if inst.file is not None else ())
    foreign = [e for e in res.skipped if not isinstance(e, ChexnetInputError)]
    if foreign:
        return ESCAPE, f"skipped {type(foreign[0]).__name__}", msgs
    if res.studies:
        return RESULT, None, msgs
    if res.skipped and all(isinstance(e, NotAnImageError) for e in res.skipped):
        return NOT_ANALYSED, type(res.skipped[0]).__name__, msgs
    return NAMED_ERROR, type(res.skipped[0]).__name__ if res.skipped else "nothing", msgs


def _read_input(case: Case, ctx: dict) -> tuple[str, str | None, list[str]]:
    got = read_input(case.path, ctx["spec"], max_pixels=ctx["max_pixels"])
    ctx["file_input"] = got
    msgs = [*got.reasons, *got.warnings] + ([str(got.error)] if got.error is not None else [])
    if got.kind == "analyse":
        return RESULT, None, msgs
    if got.error is not None and not isinstance(got.error, ChexnetInputError):
        return ESCAPE, f"error {type(got.error).__name__}", msgs
    if got.kind == "not_analysed":
        return NOT_ANALYSED, type(got.error).__name__ if got.error else None, msgs
    if got.kind == "error" and got.error is not None:
        return NAMED_ERROR, type(got.error).__name__, msgs
    return ESCAPE, f"kind {got.kind!r} error {type(got.error).__name__}", msgs


def _decode(case: Case, ctx: dict) -> tuple[str, str | None, list[str]]:
    out = decode(DecodeRequest(path=str(case.path), spec=ctx["spec"],
                               max_pixels=ctx["max_pixels"], thumb_path=None))
    msgs = [*out.reasons, *out.warnings, out.error_type or ""]
    if out.kind == "analyse":
        return RESULT, None, msgs
    if out.error_type is not None and out.error_type not in ctx["named"]:
        return ESCAPE, f"error_type {out.error_type}", msgs
    if out.kind == "not_analysed":
        return NOT_ANALYSED, out.error_type, msgs
    if out.kind == "error":
        return NAMED_ERROR, out.error_type, msgs
    return ESCAPE, f"kind {out.kind!r}", msgs


def _score(case: Case, ctx: dict) -> tuple[str, str | None, list[str]]:
    prediction = ctx["engine"].score([ctx["file_input"].prepared])
    msgs = [str(w) for p in prediction for w in getattr(p, "warnings", ())]
    return RESULT, None, msgs


RUNNERS: dict[str, Callable[[Case, dict], tuple[str, str | None, list[str]]]] = {
    "scan": _scan, "read_input": _read_input, "decode": _decode, "score": _score}


def run_entry(entry: str, case: Case, ctx: dict) -> EntryOutcome:
    start = time.perf_counter()
    where = ""
    with captured() as cap:
        try:
            kind, exc_type, msgs = RUNNERS[entry](case, ctx)
        except KeyboardInterrupt:
            raise
        except BaseException as err:  # the property: nothing but named errors, never raised
            kind, exc_type, msgs = ESCAPE, type(err).__name__, [str(err)]
            where = frames(err)
    phi = phi_hits(*msgs, cap.stderr, *cap.warnings, *cap.log_records)
    return EntryOutcome(entry, kind, exc_type, where, phi, cap.stderr, tuple(cap.warnings),
                        tuple(cap.log_records), cap.peak_rss_mb, cap.growth_mb,
                        time.perf_counter() - start)


def make_context(spec, *, max_pixels: int = DEFAULT_MAX_PIXELS, engine=None) -> dict:
    """What every case needs: the model's preprocessing, the pixel budget, an optional Engine
    (then analysable inputs are scored too)."""
    return {"spec": spec, "max_pixels": max_pixels, "engine": engine,
            "named": _named_error_names()}


def run_case(case: Case, spec=None, *, ctx: dict | None = None, **options) -> CaseOutcome:
    """One case through every entry point (``score`` only with an engine and an analysable
    input)."""
    ctx = dict(ctx) if ctx is not None else make_context(spec, **options)
    ctx["file_input"] = None
    outcome = CaseOutcome(case)
    for entry in ENTRIES:
        if entry == "score":
            got = ctx["file_input"]
            if ctx["engine"] is None or got is None or got.kind != "analyse":
                continue
        outcome.entries.append(run_entry(entry, case, ctx))
    return outcome


def default_spec():
    """The bundled model's preprocessing (what ``chexnet predict`` uses by default)."""
    from chexnet.inference.package.lookup import resolve_model

    return resolve_model(None).card.preprocess
