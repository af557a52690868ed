"""Instances from a DIMSE PACS into the cache: C-GET (the default: one association, nothing to
configure on the PACS side), or C-MOVE to a storage SCP of ours for PACS that refuse C-GET.

Why each transfer syntax in its own presentation context: a PACS answers a C-GET's C-STORE
sub-operations only in a syntax accepted for that SOP class, and some (Orthanc 1.10) pick one
context per class and then cannot transcode into it (JPEG 2000 -> explicit little endian
fails, the sub-operation with it). One context per (class, syntax) lets the PACS send each file
as it is stored. Only the SOP classes the image-level search named are proposed (at most 127
contexts fit next to the C-GET one), with the SCP role for each (role selection).

Files are written as received (``encoded_dataset``: no re-encoding) by the cache, whole or not
at all. Cancelling aborts the association between two responses; a file being written when it
happens is completed or discarded, never left half-written.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pydicom.uid import JPEGLossless as JPEGLosslessP14
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.presentation import build_context, build_role
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from chexnet.inference.errors import PacsError, PacsRejectedError, RetrievalCancelled
from chexnet.inference.pacs.cache import PacsCache
from chexnet.inference.pacs.dimse import PENDING, association, dimse_failed, quiet_library_logs
from chexnet.inference.pacs.node import PacsNode
from chexnet.inference.pacs.query import InstanceMatch

Progress = Callable[[int, int], None]
MAX_CONTEXTS = 128
#: what a chest radiograph is stored in, most likely first (the PACS picks per file)
TRANSFER_SYNTAXES = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000Lossless, JPEG2000,
                     JPEGLosslessSV1, JPEGLosslessP14, JPEGBaseline8Bit, JPEGExtended12Bit,
                     JPEGLSLossless, JPEGLSNearLossless, RLELossless,
                     DeflatedExplicitVRLittleEndian)
SUBOPS_FAILED = (0xB000,)  # some sub-operations failed


class Sink:
    """Receives C-STORE sub-operations (of a C-GET, or our SCP's for a C-MOVE): each instance
    to the cache, counted; refuses more once cancelled."""

    def __init__(self, cache: PacsCache, study_uid: str, total: int,
                 progress: Progress | None, cancel: threading.Event) -> None:
        self.cache, self.study_uid, self.total = cache, study_uid, total
        self.progress, self.cancel = progress, cancel
        self.received: dict[str, Path] = {}
        self.done = 0  # already cached before this retrieval
        self.lock = threading.Lock()

    def count_cached(self, n: int) -> None:
        with self.lock:
            self.done = n
        self.report()

    def report(self) -> None:
        if self.progress is not None:
            self.progress(min(self.done + len(self.received), self.total), self.total)

    def handle(self, event) -> int:
        if self.cancel.is_set():
            return 0xA700  # out of resources: we want no more
        self.store(str(event.request.AffectedSOPInstanceUID), event.encoded_dataset())
        return 0x0000

    def store(self, sop_uid: str, data: bytes) -> None:
        path = self.cache.store(self.study_uid, sop_uid, data)
        with self.lock:
            self.received[sop_uid] = path
        self.report()


def storage_contexts(sop_classes: Sequence[str], room: int) -> list:
    """One presentation context per (class, syntax), as many as ``room`` allows: every class
    gets its uncompressed syntaxes before any class gets more."""
    contexts: list = []
    for ts in TRANSFER_SYNTAXES:
        for sop in sop_classes:
            if len(contexts) < room:
                contexts.append(build_context(sop, [ts]))
    return contexts


def missing_requests(cache: PacsCache, study_uid: str,
                     instances: Sequence[InstanceMatch]) -> list[Dataset]:
    """The retrieve identifiers: a whole series at once where none of it is cached, else the
    instances still missing one by one (a resumed retrieval fetches only what it lacks)."""
    by_series: dict[str, list[InstanceMatch]] = {}
    for inst in instances:
        by_series.setdefault(inst.series_uid, []).append(inst)
    requests = []
    for series_uid, members in by_series.items():
        missing = [m for m in members if not cache.has(study_uid, m.sop_uid)]
        if len(missing) == len(members):
            requests.append(identifier("SERIES", study_uid, series_uid))
        else:
            requests.extend(identifier("IMAGE", study_uid, series_uid, m.sop_uid)
                            for m in missing)
    return requests


def identifier(level: str, study_uid: str, series_uid: str, sop_uid: str = "") -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    if sop_uid:
        ds.SOPInstanceUID = sop_uid
    return ds


def run_requests(assoc, node: PacsNode, requests: Sequence[Dataset], send, what: str,
                 cancel: threading.Event) -> None:
    """Send each retrieve request, following its responses; abort the association when
    cancelled (the PACS stops its sub-operations)."""
    for request in requests:
        for status, _ in send(request):
            if cancel.is_set():
                assoc.abort()
                raise RetrievalCancelled("retrieval cancelled")
            if not status or "Status" not in status:
                raise dimse_failed(node, what, None)
            code = int(status.Status)
            if code in PENDING or code == 0x0000:
                continue
            if code in SUBOPS_FAILED:
                failed = int(status.get("NumberOfFailedSuboperations", 0) or 0)
                raise PacsError(str(node), f"the {what} finished but {failed} image(s) could "
                                           "not be sent (status 0xB000)",
                                "the PACS could not send them in a transfer syntax offered; "
                                "see its log")
            raise dimse_failed(node, what, status)
    if cancel.is_set():
        raise RetrievalCancelled("retrieval cancelled")


def c_get(node: PacsNode, study_uid: str, instances: Sequence[InstanceMatch],
          sink: Sink) -> None:
    requests = missing_requests(sink.cache, study_uid, instances)
    if not requests:
        return
    classes = list(dict.fromkeys(i.sop_class for i in instances if i.sop_class))
    model = StudyRootQueryRetrieveInformationModelGet
    contexts = [build_context(model), *storage_contexts(classes, MAX_CONTEXTS - 1)]
    roles = [build_role(c, scp_role=True) for c in classes]
    with association(node, contexts, roles=roles,
                     handlers=[(evt.EVT_C_STORE, sink.handle)]) as assoc:
        run_requests(assoc, node, requests, lambda rq: assoc.send_c_get(rq, model),
                     "retrieval (C-GET)", sink.cancel)


def listen_address(node: PacsNode) -> str:
    """Where our storage SCP listens for a C-MOVE: loopback for a PACS on this machine."""
    try:
        loopback = ipaddress.ip_address(node.host).is_loopback
    except ValueError:
        loopback = node.host == "localhost"
    return "127.0.0.1" if loopback else "0.0.0.0"


def c_move(node: PacsNode, study_uid: str, instances: Sequence[InstanceMatch], sink: Sink,
           move_port: int) -> None:
    """C-MOVE to ourselves: the PACS must know ``node.calling_ae`` at this host and
    ``move_port`` (its list of modalities)."""
    requests = missing_requests(sink.cache, study_uid, instances)
    if not requests:
        return
    quiet_library_logs()
    scp = AE(ae_title=node.calling_ae)
    scp.maximum_pdu_size = 0
    for cx in AllStoragePresentationContexts:
        scp.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    try:
        server = scp.start_server((listen_address(node), move_port), block=False,
                                  evt_handlers=[(evt.EVT_C_STORE, sink.handle)])
    except OSError:
        raise PacsRejectedError(str(node), f"cannot listen on port {move_port} for the C-MOVE",
                                "the port is in use or not allowed; pick another") from None
    model = StudyRootQueryRetrieveInformationModelMove
    try:
        with association(node, [build_context(model)]) as assoc:
            run_requests(assoc, node, requests,
                         lambda rq: assoc.send_c_move(rq, node.calling_ae, model),
                         "retrieval (C-MOVE)", sink.cancel)
    finally:
        server.shutdown()
