"""Patient identities as an output folder may hold them: salted keys and shifted dates.

A screening folder must match a resumed run's patients with the first run's, without holding
Patient IDs or study dates (PHI) unless ``--include-phi`` asked. So its journal keeps, per file:

* the Patient ID and the Issuer of Patient ID as HMAC-SHA256 with a salt random per output
  folder (never a bare hash: IDs are short and guessable, a bare hash is a lookup table away);
* the study date/time shifted by a random number of days, also per folder (intervals between
  a patient's studies survive, dates do not);
* the follow-up number (PNG datasets) and the Study Instance UID as they are.

Salt and shift live in :data:`KEY_FILE` in that folder (mode 0600), so a resumed run keeps the
keys. Whoever holds the folder *with* that file can test a guessed ID or undo the shift: share
``results.csv`` and ``report.html``, not the key file (docs/decisions.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

from chexnet.inference.priors.identity import StudyIdentity

KEY_FILE = "patient_keys.json"
#: Shift range in days, either way: at least a month, at most ~10 years.
MIN_SHIFT_DAYS, MAX_SHIFT_DAYS = 30, 3650


@lru_cache(maxsize=1 << 16)  # a patient's studies, an issuer's patients: keyed once each
def _hmac(salt: bytes, text: str) -> str:
    return hmac.new(salt, text.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class PatientKeys:
    salt: bytes
    shift_days: int

    @classmethod
    def in_folder(cls, folder: Path) -> PatientKeys:
        """The folder's keys, created (random) on first use."""
        path = Path(folder) / KEY_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(bytes.fromhex(data["salt"]), int(data["shift_days"]))
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: damaged, or not a chexnet patient key file (restore it, "
                             "or screen the folder again with --fresh: new keys)") from err
        shift = MIN_SHIFT_DAYS + secrets.randbelow(MAX_SHIFT_DAYS - MIN_SHIFT_DAYS + 1)
        keys = cls(secrets.token_bytes(32), shift * secrets.choice((-1, 1)))
        text = json.dumps({"salt": keys.salt.hex(), "shift_days": keys.shift_days,
                           "about": "keys of this folder's patient keys and shifted dates; "
                                    "do not share"})
        # Written private from the start (mkstemp: mode 0600), then linked into place: a run
        # that lost the race to create it reads the winner's keys instead of replacing them.
        fd, tmp = tempfile.mkstemp(prefix=".keys-", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                return cls.in_folder(folder)
        finally:
            os.unlink(tmp)
        return keys

    def key(self, text: str) -> str:
        return _hmac(self.salt, text)

    def patient_key(self, identity: StudyIdentity) -> str:
        """The output key of a *keyed* identity (:meth:`record` -> :meth:`identity`): one value
        per patient (Patient ID and issuer), 16 hex digits; "" without a patient."""
        if not identity.patient:
            return ""
        return self.key(f"{identity.issuer}\x00{identity.patient}")[:16]

    def record(self, identity: StudyIdentity) -> dict:
        """The journal form of a read identity: keyed, shifted (a date the shift would take
        past year 1 or 9999, e.g. a CSV's placeholder, is no date: not a crash of the batch)."""
        try:
            when = identity.when + timedelta(days=self.shift_days) if identity.when else None
        except OverflowError:
            when = None
        return {"patient": self.key(identity.patient) if identity.patient else None,
                "issuer": self.key(identity.issuer) if identity.issuer else "",
                "when": when.isoformat() if when else None, "order": identity.order,
                "study_uid": identity.study_uid}

    def identity(self, record: dict) -> StudyIdentity:
        """A keyed identity back from the journal (patient and issuer stay keys; the date stays
        shifted: matching and intervals need no more)."""
        when = record.get("when")
        return StudyIdentity(patient=record.get("patient"), issuer=record.get("issuer") or "",
                             when=datetime.fromisoformat(when) if when else None,
                             order=record.get("order"), study_uid=record.get("study_uid"))

    def real_date(self, identity: StudyIdentity) -> str:
        """The study date of a keyed identity, unshifted (for ``--include-phi`` only)."""
        if identity.when is None:
            return f"follow-up {identity.order}" if identity.order is not None else ""
        return (identity.when - timedelta(days=self.shift_days)).date().isoformat()
