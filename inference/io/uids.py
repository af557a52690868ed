"""The UIDs that place an image in its study and series: one value object everywhere (image
metadata, prepared inputs, predictions, screening outcomes and rows)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class DicomUids:
    """Study, series and SOP Instance UID; ``None`` where a file has none (PNG, JPEG)."""

    study: str | None = None
    series: str | None = None
    sop_instance: str | None = None

    def record(self) -> dict[str, str | None]:
        """The fields as ``chexnet predict --json``, the screening journal and CSV name them."""
        return {"sop_instance_uid": self.sop_instance, "study_uid": self.study,
                "series_uid": self.series}

    @classmethod
    def from_record(cls, record: Mapping) -> DicomUids:
        return cls(record.get("study_uid"), record.get("series_uid"),
                   record.get("sop_instance_uid"))
