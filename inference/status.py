"""The one status vocabulary: what happened to an input, for the engine, screening and viewer.

Members are ``str`` values, so JSON, CSV and comparisons with plain strings read exactly as the
spellings written before this enum existed (``chexnet predict --json``, ``results.csv``,
``results.jsonl`` journals, which resume across versions).

``chexnet predict`` and the viewer say ``analysed`` / ``analysed_with_warnings`` /
``not_analysed``. A screening row says ``ok`` for a scored image (its warnings are in their own
column), ``not_analysed``, ``error`` (unreadable, timed out, decoder crash) or ``duplicate``
(the same bytes as an earlier file).
"""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    ANALYSED = "analysed"
    ANALYSED_WITH_WARNINGS = "analysed_with_warnings"
    NOT_ANALYSED = "not_analysed"
    OK = "ok"  # screening: scored, with or without warnings
    ERROR = "error"
    DUPLICATE = "duplicate"

    def __str__(self) -> str:  # f-strings and str() give the value, as a plain string would
        return self.value

    @property
    def text(self) -> str:
        """For people: ``not analysed``, ``analysed with warnings``..."""
        return self.value.replace("_", " ")

    @classmethod
    def of_scoring(cls, analysed: bool, warnings: tuple[str, ...] | list[str]) -> Status:
        """The status of an image the intended-use gate and the model have seen."""
        if not analysed:
            return cls.NOT_ANALYSED
        return cls.ANALYSED_WITH_WARNINGS if warnings else cls.ANALYSED


#: Screening row statuses in worklist group order (scored first).
SCREEN_STATUSES = (Status.OK, Status.NOT_ANALYSED, Status.ERROR, Status.DUPLICATE)
