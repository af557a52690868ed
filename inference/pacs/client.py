"""Reading from PACS: the API the command line and the viewer call.

``echo``, ``find_studies`` and ``retrieve_study`` take a :class:`PacsNode` and talk DIMSE
(C-ECHO, C-FIND, C-GET or C-MOVE) or, for a URL, DICOMweb (QIDO-RS, WADO-RS); what they raise
is a named :class:`~chexnet.inference.errors.PacsError` whose text is chexnet's (or
``RetrievalCancelled``). Retrieval reads the series a search describes, model-readable ones
(CR/DX, frontal first) before the rest, skips instances the cache already holds and marks the
study complete last; ``scope="readable"`` stops after the readable series (the rest can follow
with a second call, which fetches only what is missing).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from chexnet.inference.errors import PacsError, RetrievalCancelled, StudyNotFoundError
from chexnet.inference.pacs import dimse, retrieve, web
from chexnet.inference.pacs.cache import SCOPES, PacsCache, uid_hash
from chexnet.inference.pacs.node import READABLE_MODALITIES, PacsNode
from chexnet.inference.pacs.query import (
    InstanceMatch,
    SeriesMatch,
    StudyMatch,
    StudyQuery,
    reading_order,
)
from chexnet.inference.pacs.retrieve import Progress, Sink

log = logging.getLogger(__name__)


def echo(node: PacsNode) -> float:
    """Is the node there and does it talk to us? C-ECHO, or a one-study QIDO-RS search for a
    DICOMweb node. Returns the round trip in seconds."""
    return web.echo(node) if node.is_web else dimse.echo(node)


def find_studies(node: PacsNode, patient_id: str = "", patient_name: str = "",
                 accession: str = "", date_from: str = "", date_to: str = "",
                 modalities: tuple[str, ...] = READABLE_MODALITIES) -> list[StudyMatch]:
    """Studies matching every key given (empty: any), newest first. Patient name and ID are
    returned for display and never logged."""
    query = StudyQuery(patient_id.strip(), patient_name.strip(), accession.strip(),
                       date_from.strip(), date_to.strip(), tuple(modalities))
    found = web.find_studies(node, query) if node.is_web else dimse.find_studies(node, query)
    log.info("%s: %d studies found", node, len(found))
    return found


def study_series(node: PacsNode, study_uid: str) -> list[SeriesMatch]:
    series = (web.find_series(node, study_uid) if node.is_web
              else dimse.find_series(node, study_uid))
    if not series:
        raise StudyNotFoundError(str(node), "the PACS has no study with this Study Instance UID")
    return series


def study_instances(node: PacsNode, study_uid: str,
                    series: list[SeriesMatch]) -> list[InstanceMatch]:
    if node.is_web:
        return web.find_instances(node, study_uid, series)
    return dimse.find_instances(node, study_uid, series)


def retrieve_study(node: PacsNode, study_uid: str, cache: PacsCache | None = None,
                   progress: Progress | None = None, cancel: threading.Event | None = None,
                   scope: str = "all") -> list[Path]:
    """The study's files in the cache (readable series first), fetched as needed.

    ``progress(done, total)`` is called as instances arrive (from a network thread);
    ``cancel`` set stops the retrieval (``RetrievalCancelled``): what arrived whole stays
    cached, nothing half-written does, and the study is not marked complete.
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}")
    cache = cache or PacsCache()
    cancel = cancel or threading.Event()
    cached = cache.complete(study_uid, scope)
    if cached is not None:
        if progress is not None:
            progress(len(cached), len(cached))
        log.info("study %s: %d instances from the cache", uid_hash(study_uid)[:8], len(cached))
        return cached
    cache.begin(study_uid)
    readable, rest = reading_order(study_series(node, study_uid))
    chosen = readable + rest if scope == "all" or not readable else readable
    instances = study_instances(node, study_uid, chosen)
    if not instances:
        raise StudyNotFoundError(str(node), "the PACS lists the study but none of its images")
    if cancel.is_set():
        raise RetrievalCancelled("retrieval cancelled")
    sink = Sink(cache, study_uid, len(instances), progress, cancel)
    sink.count_cached(sum(cache.has(study_uid, i.sop_uid) for i in instances))
    if node.is_web:
        web.retrieve(node, study_uid, instances, sink)
    elif node.move_port:
        retrieve.c_move(node, study_uid, instances, sink, node.move_port)
    else:
        retrieve.c_get(node, study_uid, instances, sink)
    files = [cache.instance_path(study_uid, i.sop_uid) for i in instances]
    lacking = sum(not f.is_file() for f in files)
    if lacking:
        raise PacsError(str(node), f"{lacking} of {len(files)} images of the study did not "
                                   "arrive", "retrieve it again; see the PACS's log if it "
                                             "persists")
    cache.mark_complete(study_uid, files, "all" if chosen == readable + rest else scope)
    cache.evict(keep=study_uid)
    log.info("study %s: %d instances retrieved", uid_hash(study_uid)[:8], len(files))
    return files
