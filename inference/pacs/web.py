"""DICOMweb (dicomweb-client): QIDO-RS searches and WADO-RS retrieval, for a node given as a URL.

The same answers as the DIMSE path (``StudyMatch``, ``SeriesMatch``, ``InstanceMatch``: QIDO's
DICOM JSON becomes a pydicom Dataset and goes through the same parsers). Instances are asked
for in their stored transfer syntax (``transfer-syntax=*``): no transcoding on the server, as
with C-GET. HTTP failures become named errors; a 401/403 is a refusal, a 404 no such study.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from io import BytesIO
from typing import TypeVar

from pydicom import dcmwrite
from pydicom.dataset import Dataset

from chexnet.inference.errors import (
    PacsConnectionError,
    PacsError,
    PacsRejectedError,
    PacsTimeoutError,
    PacsTlsError,
    RetrievalCancelled,
    StudyNotFoundError,
)
from chexnet.inference.io.file_guard import library_error_facts
from chexnet.inference.pacs.node import PacsNode
from chexnet.inference.pacs.query import (
    InstanceMatch,
    SeriesMatch,
    StudyMatch,
    StudyQuery,
    instance_match,
    series_match,
    study_match,
    wanted,
)

T = TypeVar("T")
STUDY_FIELDS = ("StudyInstanceUID", "StudyDate", "StudyTime", "StudyDescription",
                "ModalitiesInStudy", "NumberOfStudyRelatedInstances", "PatientName",
                "PatientID", "AccessionNumber")
SERIES_FIELDS = ("SeriesInstanceUID", "Modality", "SeriesNumber",
                 "NumberOfSeriesRelatedInstances", "ViewPosition")
QIDO_LIMIT = 1000  # one page: get_remaining kept asking Orthanc 1.10 for pages without end
AS_STORED = (("application/dicom", "*"),)


def client(node: PacsNode):
    from dicomweb_client.api import DICOMwebClient
    from requests import Session

    session = Session()
    session.verify = node.tls_ca or True
    logging.getLogger("dicomweb_client").setLevel(logging.WARNING)  # its debug logs queries
    web = DICOMwebClient(node.url, session=session, timeout=node.timeout_s)
    # its default retries every failure 5 times with back-off (~30 s for a refused
    # connection): a reader waiting at a dialog wants the answer now, and can try again
    web.set_http_retry_params(retry=False)
    return web


@contextmanager
def http_errors(node: PacsNode, what: str) -> Iterator[None]:
    """requests' and dicomweb-client's exceptions as named errors (never their text: it
    quotes the URL, whose query names patients)."""
    import requests

    where = str(node)
    try:
        yield
    except requests.exceptions.SSLError:
        raise PacsTlsError(where, f"the TLS handshake failed during the {what}") from None
    except requests.exceptions.Timeout:
        raise PacsTimeoutError(where, f"no answer to the {what} within {node.timeout_s:g} s"
                               ) from None
    except requests.exceptions.ConnectionError:
        raise PacsConnectionError(where, f"cannot connect for the {what} (connection refused "
                                         "or host unreachable)") from None
    except requests.exceptions.HTTPError as err:
        code = getattr(err.response, "status_code", 0)
        if code in (401, 403):
            raise PacsRejectedError(where, f"the {what} was refused (HTTP {code})",
                                    "check the credentials and this account's rights") from None
        if code == 404:
            raise StudyNotFoundError(where, f"not found (HTTP 404) during the {what}",
                                     "check the URL (e.g. .../dicom-web) and search again"
                                     ) from None
        raise PacsError(where, f"the {what} failed (HTTP {code})") from None
    except (ValueError, TypeError, KeyError) as err:
        raise PacsError(where, f"the {what} got an answer chexnet cannot read "
                               f"({library_error_facts(err)})",
                        "check that the URL is the DICOMweb root") from None


def datasets(answers: list[dict]) -> list[Dataset]:
    return [Dataset.from_json(a) for a in answers]


def call(node: PacsNode, what: str, fn: Callable[..., T], *args, **kwargs) -> T:
    with http_errors(node, what):
        return fn(*args, **kwargs)


def echo(node: PacsNode) -> float:
    started = time.monotonic()
    c = client(node)
    call(node, "test search (QIDO-RS)", c.search_for_studies, limit=1)
    return time.monotonic() - started


def find_studies(node: PacsNode, q: StudyQuery) -> list[StudyMatch]:
    filters = {k: v for k, v in (("PatientID", q.patient_id), ("PatientName", q.patient_name),
                                 ("AccessionNumber", q.accession), ("StudyDate", q.date_range))
               if v}
    if q.modalities:
        filters["ModalitiesInStudy"] = ",".join(q.modalities)
    c = client(node)
    found = call(node, "study search (QIDO-RS)", c.search_for_studies, fields=STUDY_FIELDS,
                 search_filters=filters, limit=QIDO_LIMIT)
    with http_errors(node, "study search (QIDO-RS)"):
        matches = [m for m in map(study_match, datasets(found)) if m and wanted(m, q)]
    return sorted(matches, key=lambda m: (m.date, m.time), reverse=True)


def find_series(node: PacsNode, study_uid: str) -> list[SeriesMatch]:
    c = client(node)
    found = call(node, "series search (QIDO-RS)", c.search_for_series,
                 study_instance_uid=study_uid, fields=SERIES_FIELDS, limit=QIDO_LIMIT)
    with http_errors(node, "series search (QIDO-RS)"):
        return [m for m in map(series_match, datasets(found)) if m is not None]


def find_instances(node: PacsNode, study_uid: str,
                   series: Sequence[SeriesMatch]) -> list[InstanceMatch]:
    c = client(node)
    out: list[InstanceMatch] = []
    for s in series:
        found = call(node, "image search (QIDO-RS)", c.search_for_instances,
                     study_instance_uid=study_uid, series_instance_uid=s.series_uid,
                     fields=("SOPClassUID",), limit=QIDO_LIMIT)
        with http_errors(node, "image search (QIDO-RS)"):
            out.extend(m for m in (instance_match(d, s.series_uid) for d in datasets(found))
                       if m is not None)
    return out


def retrieve(node: PacsNode, study_uid: str, instances: Sequence[InstanceMatch], sink) -> None:
    """WADO-RS, one instance at a time (a cancel takes effect between two), skipping what the
    cache holds; each written by the sink, as C-GET's are."""
    c = client(node)
    for inst in instances:
        if sink.cancel.is_set():
            raise RetrievalCancelled("retrieval cancelled")
        if sink.cache.has(study_uid, inst.sop_uid):
            continue
        ds = call(node, "retrieval (WADO-RS)", c.retrieve_instance, study_uid,
                  inst.series_uid, inst.sop_uid, media_types=AS_STORED)
        buffer = BytesIO()
        with http_errors(node, "retrieval (WADO-RS)"):
            dcmwrite(buffer, ds, enforce_file_format=True)
        sink.store(inst.sop_uid, buffer.getvalue())
