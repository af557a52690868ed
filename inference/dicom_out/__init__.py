"""Results as DICOM a PACS can file: a TID 1500 Structured Report and a heat-map Secondary
Capture per analysed image, in the source's study (docs/dicom-results.md)."""

from chexnet.inference.dicom_out.results import DicomResults, write_dicom_results

__all__ = ["DicomResults", "write_dicom_results"]
