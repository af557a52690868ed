"""What goes wrong with a PACS, said in words: nothing listening, an association refused for an
unknown calling AE title (a real Orthanc told to refuse strangers), a node that never answers,
TLS against a plain port. A cancelled retrieval leaves no half-written file and no study
marked complete, and the next retrieval finishes it."""

from __future__ import annotations

import threading
import time

import pytest

from chexnet.inference.errors import (
    PacsConnectionError,
    PacsRejectedError,
    PacsTimeoutError,
    PacsTlsError,
    RetrievalCancelled,
    StudyNotFoundError,
)
from chexnet.inference.pacs.cache import MARKER, TEMP_GLOB
from chexnet.inference.pacs.client import echo, find_studies, retrieve_study
from chexnet.inference.pacs.node import PacsNode
from tests.node.helpers import free_port
from tests.pacs.archive import closed_port, content, silent_port
from tests.pacs.orthanc import Orthanc

#: Orthanc accepts an association from an unknown AE only if it may do something unasked
#: (echo, store); with those off it refuses the caller at association time.
STRICT = {"DicomAlwaysAllowEcho": False, "DicomAlwaysAllowStore": False,
          "DicomAlwaysAllowFind": False, "DicomAlwaysAllowGet": False,
          "DicomAlwaysAllowMove": False, "DicomCheckCalledAet": True}


@pytest.fixture(scope="module")
def strict_orthanc(tmp_path_factory):
    orthanc = Orthanc(tmp_path_factory.mktemp("strict"), free_port(), options=STRICT)
    yield orthanc
    orthanc.stop()


def test_nothing_listening_is_a_refused_connection():
    node = PacsNode.parse(f"ORTHANC@127.0.0.1:{closed_port()}", timeout_s=5)
    with pytest.raises(PacsConnectionError, match="connection refused"):
        echo(node)


def test_an_unknown_calling_ae_is_rejected_with_the_reason(strict_orthanc):
    node = PacsNode.parse(f"ORTHANC@127.0.0.1:{strict_orthanc.dicom_port}", "STRANGER",
                          timeout_s=10)
    with pytest.raises(PacsRejectedError, match="does not know our calling AE title 'STRANGER'"):
        find_studies(node, patient_id="PAT-001")
    known = PacsNode.parse(f"ORTHANC@127.0.0.1:{strict_orthanc.dicom_port}", "CHEXNET")
    assert echo(known) < 10  # the declared modality is let in


def test_a_wrong_called_ae_is_rejected_with_the_reason(strict_orthanc):
    node = PacsNode.parse(f"NOTORTHANC@127.0.0.1:{strict_orthanc.dicom_port}", "CHEXNET")
    with pytest.raises(PacsRejectedError, match="called AE title 'NOTORTHANC'"):
        echo(node)


def test_a_node_that_never_answers_times_out():
    with silent_port() as port:
        node = PacsNode.parse(f"ORTHANC@127.0.0.1:{port}", timeout_s=1.5)
        started = time.monotonic()
        with pytest.raises(PacsTimeoutError, match="no answer"):
            echo(node)
        assert time.monotonic() - started < 10


def test_tls_against_a_plain_port_is_a_tls_failure(node):
    tls = PacsNode.parse(node.address, tls=True, timeout_s=5)
    with pytest.raises(PacsTlsError, match="TLS"):
        echo(tls)


def test_an_unknown_study_is_said_so(node, cache):
    with pytest.raises(StudyNotFoundError, match="no study"):
        retrieve_study(node, "1.2.3.4.5.6.7.8.9", cache)


def test_a_cancelled_retrieval_leaves_no_partial_file_and_no_complete_mark(node, archive,
                                                                           cache):
    study = archive.studies["ACC-1001"]  # three images
    cancel = threading.Event()

    def progress(done: int, _total: int) -> None:
        if done >= 1:
            cancel.set()

    with pytest.raises(RetrievalCancelled):
        retrieve_study(node, study, cache, progress=progress, cancel=cancel)
    folder = cache.study_dir(study)
    assert list(folder.glob(TEMP_GLOB)) == []
    assert not (folder / MARKER).exists()
    assert cache.complete(study) is None
    kept = list(folder.glob("*.dcm"))
    assert 1 <= len(kept) < 3
    files = retrieve_study(node, study, cache)  # resumes: fetches only what is missing
    assert sorted(map(content, files)) == sorted(map(content, archive.files[study]))
    assert (folder / MARKER).exists()


def test_errors_never_quote_query_values():
    node = PacsNode.parse(f"ORTHANC@127.0.0.1:{closed_port()}", timeout_s=5)
    with pytest.raises(PacsConnectionError) as caught:
        find_studies(node, patient_id="SECRET-ID-42", patient_name="Secret^Patient")
    assert "SECRET" not in str(caught.value)
    assert "Secret" not in str(caught.value)
