"""`chexnet listen` between a real PACS and the bundled model: Orthanc (a subprocess) C-STOREs a
JPEG 2000 radiograph (pydicom-data RG1_J2KR) and an NIH image made DICOM to the node, which
screens them and sends its DICOM results back; Orthanc then shows the study with new series.
Skipped when Orthanc is not installed."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image as PILImage

from tests.inference.io.dicom_factory import make_dicom
from tests.node.helpers import ListenProcess, free_port, wait_for_rows, wait_until
from tests.pacs.orthanc import ORTHANC_AET, Orthanc


@pytest.fixture
def orthanc_and_node(tmp_path):
    port = free_port()
    pacs = Orthanc(tmp_path / "orthanc", port)
    node = None
    try:
        node = ListenProcess(tmp_path / "node", "--study-timeout", "1", "--workers", "2",
                             "--send-to", f"{ORTHANC_AET}@127.0.0.1:{pacs.dicom_port}",
                             port=port, allow=ORTHANC_AET)
        yield pacs, node
    finally:
        if node is not None:
            assert node.stop() == 0, node.text()
        pacs.stop()


def nih_dicom(png, path):
    pixels = np.asarray(PILImage.open(png).convert("L"))
    return make_dicom(path, pixels, bits_stored=8, PatientID="SECRET-ID-42",
                      PatientName="Secret^Patient")


def test_orthanc_sends_studies_and_gets_results_back(orthanc_and_node, tmp_path, rg1_j2kr,
                                                     nih_png):
    pacs, node = orthanc_and_node
    uploaded = [pacs.upload(rg1_j2kr), pacs.upload(nih_dicom(nih_png, tmp_path / "nih.dcm"))]
    studies = {u["ParentStudy"] for u in uploaded}
    series_before = {s: len(pacs.get(f"/studies/{s}")["Series"]) for s in studies}

    pacs.store_to("chexnet", [u["ID"] for u in uploaded])  # Orthanc's C-STORE SCU

    rows = wait_for_rows(node.out, 2, timeout=180, proc=node)
    assert sorted(r["status"] for r in rows) == ["ok", "ok"], rows
    assert "SECRET" not in node.text()
    assert "Secret" not in node.text()

    def results_arrived() -> bool:
        return all(len(pacs.get(f"/studies/{s}")["Series"]) > series_before[s]
                   for s in studies)

    def outbox_empty() -> bool:
        return not any(p.is_file() for p in (node.out / "outbox").rglob("*"))

    wait_until(results_arrived, timeout=120, what="the result series in Orthanc")
    wait_until(outbox_empty, timeout=60, what="every result acknowledged")
    assert len(list((node.out / "sent").rglob("*.dcm"))) == 4  # an SR and an SC per image
    for study in studies:
        series = pacs.get(f"/studies/{study}")["Series"]
        assert len(series) == series_before[study] + 2, series  # the SR and the SC series
        modalities = {pacs.get(f"/series/{s}")["MainDicomTags"].get("Modality") for s in series}
        assert "SR" in modalities, modalities
