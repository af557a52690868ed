"""A screening run's patients: each file's identity for the journal (keyed), and which
``--priors`` files belong to a patient of the run.

DICOM identities come from the decode workers (the header they parsed); PNG/JPEG ones from the
labels CSV beside or above the file's folder, read here (a CSV, not an image: no decoder runs
in the main process). Identities are journaled keyed and shifted
(:class:`~chexnet.inference.priors.keys.PatientKeys`), never as read.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from chexnet.inference.priors.identity import PatientTable, StudyIdentity, identity_from_table
from chexnet.inference.screen.decode import DecodeOutcome
from chexnet.inference.screen.discovery import InputFile
from chexnet.inference.screen.prior_columns import PRIOR_ROLE, folder_keys


class RunIdentities:
    def __init__(self, out: Path, records: Iterable[dict]) -> None:
        self.keys = folder_keys(out)
        self._tables: dict[Path, PatientTable | None] = {}
        self._patients: set[tuple[str, str]] = set()  # keyed (issuer, patient) of the inputs
        for rec in records:
            if rec.get("role") != PRIOR_ROLE:
                self._note(rec.get("identity"))

    def identity(self, item: InputFile, outcome: DecodeOutcome) -> StudyIdentity | None:
        if outcome.identity is not None:
            return outcome.identity
        if outcome.kind == "error" or outcome.uids.study is not None:
            return None  # unreadable, or a DICOM whose identity could not be read
        folder = item.path.parent
        if folder not in self._tables:
            self._tables[folder] = PatientTable.find(folder)
        ident = identity_from_table(item.path, self._tables[folder])
        return ident if ident.patient else None

    def record_fields(self, item: InputFile, outcome: DecodeOutcome) -> dict:
        """What a journal record gets: ``identity`` (keyed; None when unknown) and, for a
        ``--priors`` file, ``role``."""
        ident = self.identity(item, outcome)
        fields = {"identity": self.keys.record(ident) if ident is not None else None}
        if item.prior:
            fields["role"] = PRIOR_ROLE
        return fields

    def keep(self, item: InputFile, outcome: DecodeOutcome) -> bool:
        """Whether to score and journal a file: every input file (its patient noted), and the
        ``--priors`` files of the inputs' patients (analysable ones). Call in discovery order:
        inputs come before priors."""
        if not item.prior:
            ident = self.identity(item, outcome)
            self._note(self.keys.record(ident) if ident is not None else None)
            return True
        if outcome.kind != "analyse":
            return False
        ident = self.identity(item, outcome)
        rec = self.keys.record(ident) if ident is not None else None
        return rec is not None and (rec["issuer"], rec["patient"]) in self._patients

    def _note(self, rec: dict | None) -> None:
        if rec and rec.get("patient"):
            self._patients.add((rec.get("issuer") or "", rec["patient"]))
