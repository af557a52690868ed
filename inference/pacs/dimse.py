"""DIMSE with a PACS (pynetdicom): one association helper that turns every way an association
can fail into a named error in chexnet's words, C-ECHO, and C-FIND at the study, series and
image levels.

Why a TCP connect before the association: pynetdicom reports a refused connection, an unknown
host and an unanswered connect all the same way (not established); the probe tells them apart
and costs one short connection. After it, an A-ASSOCIATE-RJ carries the PACS's reason (read
from the ACSE primitive), no answer within ``timeout_s`` is a timeout, and a TLS node that
drops the connection before any answer is a TLS failure. pynetdicom's loggers are held at
WARNING: its debug output dumps identifiers (patient names and IDs).
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.presentation import PresentationContext, build_context
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind, Verification

from chexnet.inference.errors import (
    PacsConnectionError,
    PacsError,
    PacsRejectedError,
    PacsTimeoutError,
    PacsTlsError,
)
from chexnet.inference.pacs.node import PacsNode
from chexnet.inference.pacs.query import (
    InstanceMatch,
    SeriesMatch,
    StudyMatch,
    StudyQuery,
    instance_identifier,
    instance_match,
    series_identifier,
    series_match,
    study_identifier,
    study_match,
    wanted,
)

log = logging.getLogger(__name__)
PENDING = (0xFF00, 0xFF01)

#: A-ASSOCIATE-RJ (source, diagnostic) -> what it means (PS3.8 table 9-21)
REJECT_REASONS = {
    (1, 2): "it does not support the application context",
    (1, 3): "it does not know our calling AE title",
    (1, 7): "it does not answer to this called AE title",
    (2, 2): "it does not support the protocol version",
    (3, 1): "it is too busy (temporary congestion)",
    (3, 2): "it has reached its limit of associations",
}


def quiet_library_logs() -> None:
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)


def probe(node: PacsNode) -> None:
    """A TCP connect to the node: refused, unknown host and no answer as named errors."""
    try:
        with socket.create_connection((node.host, node.port), timeout=node.timeout_s):
            pass
    except socket.gaierror:
        raise PacsConnectionError(str(node), f"unknown host {node.host!r}") from None
    except TimeoutError:
        raise PacsTimeoutError(str(node), f"no answer to a connection within "
                                          f"{node.timeout_s:g} s") from None
    except ConnectionRefusedError:
        raise PacsConnectionError(str(node), "connection refused: nothing listens on port "
                                             f"{node.port}") from None
    except OSError as err:
        raise PacsConnectionError(str(node), f"cannot connect ({type(err).__name__})") from None


def tls_context(node: PacsNode) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=node.tls_ca or None)
    ctx.check_hostname = False  # a PACS is known by IP as often as by name; the CA still counts
    return ctx


@contextmanager
def association(node: PacsNode, contexts: Sequence[PresentationContext], *,
                roles: Sequence = (), handlers: Sequence = ()) -> Iterator:
    """An established association (released on exit), or a named :class:`PacsError`."""
    quiet_library_logs()
    probe(node)
    seen: dict[str, object] = {}
    ae = AE(ae_title=node.calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = node.timeout_s
    ae.connection_timeout = node.timeout_s
    ae.maximum_pdu_size = 0  # as large as the PACS sends
    watch = [(evt.EVT_ACSE_RECV, lambda e: seen.setdefault("answer", e.primitive)),
             (evt.EVT_CONN_OPEN, lambda e: seen.setdefault("open", True))]
    started = time.monotonic()
    assoc = ae.associate(node.host, node.port, contexts=list(contexts), ae_title=node.ae_title,
                         ext_neg=list(roles) or None, evt_handlers=[*watch, *handlers],
                         tls_args=(tls_context(node), node.host) if node.tls else None)
    if not assoc.is_established:
        raise association_error(node, assoc, seen, time.monotonic() - started)
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()


def association_error(node: PacsNode, assoc, seen: dict, elapsed: float) -> PacsError:
    answer = seen.get("answer")
    where = str(node)
    if assoc.is_rejected and answer is not None:
        source, diag = getattr(answer, "result_source", 0), getattr(answer, "diagnostic", 0)
        reason = REJECT_REASONS.get((source, diag), "it gave no reason")
        if (source, diag) == (1, 3):
            reason = f"it does not know our calling AE title {node.calling_ae!r}"
        elif (source, diag) == (1, 7):
            reason = f"it does not answer to the called AE title {node.ae_title!r}"
        return PacsRejectedError(where, f"the PACS rejected the association: {reason}")
    if node.tls and "open" not in seen and elapsed < node.timeout_s:
        return PacsTlsError(where, "the TLS handshake failed")
    if answer is None and elapsed >= node.timeout_s * 0.9:
        return PacsTimeoutError(where, f"no answer to the association request within "
                                       f"{node.timeout_s:g} s")
    if assoc.is_aborted and answer is not None and getattr(answer, "result", None) == 0:
        return PacsRejectedError(where, "the PACS accepted none of the proposed services "
                                        "(query/retrieve or storage classes)",
                                 "check that this AE title may query and retrieve")
    if assoc.is_aborted:
        return PacsRejectedError(where, "the PACS aborted the association")
    return PacsConnectionError(where, "the association could not be established")


def dimse_failed(node: PacsNode, what: str, status: Dataset | None) -> PacsError:
    """A request that got no or a failure status."""
    if status is None or "Status" not in status:
        return PacsTimeoutError(str(node), f"no answer to the {what} within "
                                           f"{node.timeout_s:g} s, or the connection dropped")
    code = int(status.Status)
    if code in (0xA801,):
        return PacsRejectedError(str(node), f"the {what} was refused: the destination AE title "
                                            "is unknown to the PACS (status 0xA801)")
    return PacsRejectedError(str(node), f"the {what} failed with status 0x{code:04X}",
                             "this AE title may not be allowed to query/retrieve, or the PACS "
                             "could not process the request")


def echo(node: PacsNode) -> float:
    """C-ECHO; returns the round trip in seconds."""
    started = time.monotonic()
    with association(node, [build_context(Verification)]) as assoc:
        status = assoc.send_c_echo()
        if status is None or getattr(status, "Status", None) != 0:
            raise dimse_failed(node, "verification (C-ECHO)", status or None)
    return time.monotonic() - started


def find(node: PacsNode, identifier: Dataset, what: str) -> list[Dataset]:
    """One C-FIND (study root), every pending answer's identifier."""
    model = StudyRootQueryRetrieveInformationModelFind
    with association(node, [build_context(model)]) as assoc:
        return find_on(assoc, node, identifier, what)


def find_on(assoc, node: PacsNode, identifier: Dataset, what: str) -> list[Dataset]:
    answers = []
    model = StudyRootQueryRetrieveInformationModelFind
    for status, found in assoc.send_c_find(identifier, model):
        if not status or "Status" not in status:
            raise dimse_failed(node, what, None)
        if status.Status in PENDING:
            if found is not None:
                answers.append(found)
        elif status.Status != 0x0000:
            raise dimse_failed(node, what, status)
    return answers


def find_studies(node: PacsNode, query: StudyQuery) -> list[StudyMatch]:
    answers = find(node, study_identifier(query), "study search (C-FIND)")
    matches = [m for m in map(study_match, answers) if m is not None and wanted(m, query)]
    return sorted(matches, key=lambda m: (m.date, m.time), reverse=True)


def find_series(node: PacsNode, study_uid: str) -> list[SeriesMatch]:
    answers = find(node, series_identifier(study_uid), "series search (C-FIND)")
    return [m for m in map(series_match, answers) if m is not None]


def find_instances(node: PacsNode, study_uid: str,
                   series: Sequence[SeriesMatch]) -> list[InstanceMatch]:
    """Every instance of ``series`` (one association, one C-FIND per series)."""
    out: list[InstanceMatch] = []
    with association(node, [build_context(StudyRootQueryRetrieveInformationModelFind)]) as a:
        for s in series:
            found = find_on(a, node, instance_identifier(study_uid, s.series_uid),
                            "image search (C-FIND)")
            out.extend(m for m in (instance_match(d, s.series_uid) for d in found) if m)
    return out
