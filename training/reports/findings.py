"""The finding vocabulary of ``labels-from-reports --auto``: the 14 ChestX-ray14 labels and
``normal``, each with English and Chinese terms, extendable with a hospital's own words.

English terms are regular expressions matched on whole words of the lower-cased text (a final
``s``/``es`` is allowed, so "effusions" matches "effusion"); Chinese terms are plain substrings
(Chinese has no spaces between words). ``--vocabulary FILE`` adds terms: a CSV with the columns
``label`` and ``term`` (a new label name adds a column to labels.csv), optional ``regex`` (1:
the term is a regular expression, else it is matched literally).

``normal`` terms are whole statements ("no acute cardiopulmonary process", 未见明显异常): they
carry their own negation and are never themselves negated.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from chexnet.inference.package.card import CHESTXRAY14_LABELS
from chexnet.training.reports.report_files import ReportFileError, decode_file

NORMAL = "normal"
CJK = re.compile(r"[\u3400-\u9fff]")

# label -> English regular expressions (lower case, whole words; plural allowed at the end).
ENGLISH: dict[str, tuple[str, ...]] = {
    "Atelectasis": (r"atelecta(?:sis|ses|tic)", r"(?:lobar|lobe|segmental) collapse",
                    r"collapse of the (?:\w+ )?(?:lobe|lung)"),
    "Cardiomegaly": (r"cardiomegaly", r"cardiac enlargement",
                     r"enlarge(?:d|ment of the) (?:heart|cardiac silhouette|cardiac shadow)",
                     r"(?:heart|heart size|cardiac silhouette|cardiac size|cardiac shadow)"
                     r" (?:(?:is|are|appears|remains) )?(?:(?:mildly|moderately|markedly|"
                     r"severely|slightly|again|still|top-normal to) )?(?:enlarged|large)"),
    "Effusion": (r"(?<!pericardial )effusion", r"pleural fluid", r"hydrothorax"),
    "Infiltration": (r"infiltrat(?:e|es|ion|ions|ive)", r"air ?space (?:opacit(?:y|ies)|disease)"),
    "Mass": (r"mass(?:es)?(?! effect)", r"tumou?r"),
    "Nodule": (r"nodul(?:e|es|ar opacit(?:y|ies)|arity)",),
    "Pneumonia": (r"(?:broncho)?pneumonias?", r"pneumonic", r"infectious process",
                  r"(?:lung|pulmonary|chest) infection"),
    "Pneumothorax": (r"(?:hydro)?pneumothora(?:x|ces)",),
    "Consolidation": (r"consolidat(?:ion|ions|ive|ed)",),
    "Edema": (r"(?<!soft tissue )(?<!soft-tissue )o?edema", r"(?:pulmonary )?vascular congestion",
              r"pulmonary congestion"),
    # not the lung's: subcutaneous / surgical emphysema (air in soft tissue), cystic fibrosis
    "Emphysema": (r"(?<!subcutaneous )(?<!surgical )(?<!soft tissue )emphysema(?:tous)?",),
    "Fibrosis": (r"(?<!cystic )fibros(?:is|es)", r"fibrotic"),
    "Pleural_Thickening": (r"pleural thickening", r"thickening of the (?:\w+ )?pleura",
                           r"thickened pleura", r"pleural(?:-| )?based thickening",
                           r"apical (?:pleural )?capping"),
    "Hernia": (r"hernia(?:tion)?", r"herniated"),
    NORMAL: (r"no acute cardiopulmonary (?:process|disease|abnormality|findings?)",
             r"no acute (?:intrathoracic |chest )?(?:process|disease|abnormality|findings?)",
             r"no active (?:lung |chest )?disease", r"normal chest(?: radiograph| x-?ray)?",
             r"within normal limits", r"no radiographic evidence of acute disease",
             r"(?:the )?lungs are (?:\w+ and )?clear(?! of)", r"clear lungs",
             r"(?:the )?heart (?:size )?is normal(?: in size)?", r"normal heart size",
             r"(?:chest|study|radiograph) is unremarkable", r"unremarkable (?:chest|study)"),
}
CHINESE: dict[str, tuple[str, ...]] = {
    "Atelectasis": ("肺不张", "肺膨胀不全"),
    "Cardiomegaly": ("心影增大", "心影稍大", "心影明显增大", "心脏增大", "心脏扩大", "心影扩大"),
    "Effusion": ("胸腔积液", "胸水", "胸腔少量积液", "胸腔积液征"),
    "Infiltration": ("浸润", "渗出"),
    "Mass": ("肿块", "团块", "占位"),
    "Nodule": ("结节",),
    "Pneumonia": ("肺炎", "肺部感染", "肺感染", "感染性病变", "感染"),
    "Pneumothorax": ("气胸",),
    "Consolidation": ("实变",),
    "Edema": ("肺水肿", "间质性水肿"),
    "Emphysema": ("肺气肿",),
    "Fibrosis": ("纤维化", "纤维灶", "纤维索条"),
    "Pleural_Thickening": ("胸膜增厚", "胸膜肥厚", "胸膜局部增厚"),
    "Hernia": ("疝",),
    NORMAL: ("未见明显异常", "未见异常", "未见明显病变", "心肺膈未见", "心肺未见"),
}


@dataclass(frozen=True)
class Mention:
    """A vocabulary term found in a sentence: label and character span."""

    label: str
    start: int
    end: int


@dataclass
class Vocabulary:
    """Labels in column order and their terms (regular expressions), compiled into one
    alternation per label and script, longest term first."""

    labels: list[str]
    terms: list[tuple[str, str, bool]] = field(default_factory=list)  # label, body, Chinese
    _compiled: list[tuple[str, re.Pattern]] | None = field(default=None, repr=False,
                                                           compare=False)

    def add(self, label: str, term: str, regex: bool = False) -> None:
        if label not in self.labels:
            self.labels.append(label)
        body = term.lower() if regex else re.escape(term.lower())
        re.compile(body)  # a bad regular expression fails here, naming this term
        self.terms.append((label, body, CJK.search(term) is not None))
        self._compiled = None

    @property
    def patterns(self) -> list[tuple[str, re.Pattern]]:
        if self._compiled is None:
            grouped: dict[tuple[str, bool], list[str]] = {}
            for label, body, chinese in self.terms:
                grouped.setdefault((label, chinese), []).append(body)
            self._compiled = []
            for (label, chinese), bodies in grouped.items():
                alt = "|".join(sorted(bodies, key=len, reverse=True))
                self._compiled.append((label, re.compile(  # Chinese: substrings; else words
                    f"(?:{alt})" if chinese else rf"(?<![a-z])(?:{alt})(?:s|es)?(?![a-z])")))
        return self._compiled

    @property
    def findings(self) -> list[str]:
        return [lb for lb in self.labels if lb != NORMAL]

    def mentions(self, sentence: str) -> list[Mention]:
        """Every term occurrence in a lower-cased sentence; where two overlap, the longer one
        stays (胸腔积液 over 积液, "pleural effusion" in "loculated pleural effusion")."""
        found = [Mention(label, m.start(), m.end()) for label, pattern in self.patterns
                 for m in pattern.finditer(sentence)]
        found.sort(key=lambda m: (-(m.end - m.start), m.start))
        kept: list[Mention] = []
        for m in found:
            if all(m.end <= k.start or m.start >= k.end for k in kept):
                kept.append(m)
        return sorted(kept, key=lambda m: m.start)


def builtin_vocabulary() -> Vocabulary:
    vocab = Vocabulary([*CHESTXRAY14_LABELS, NORMAL])
    for table in (ENGLISH, CHINESE):
        for label, terms in table.items():
            for term in terms:
                vocab.add(label, term, regex=table is ENGLISH)
    return vocab


def load_vocabulary(path: str | Path | None = None) -> Vocabulary:
    """The built-in vocabulary, extended by the CSV at ``path`` (columns: label, term[, regex])."""
    vocab = builtin_vocabulary()
    if path is None:
        return vocab
    path = Path(path)
    rows = list(csv.DictReader(io.StringIO(decode_file(path)[0], newline="")))
    if not rows or not {"label", "term"} <= set(rows[0]):
        raise ReportFileError(path, "a vocabulary needs the columns label and term",
                              "one row per term, e.g. 'Effusion,积液' (optional column regex: 1)")
    for line_no, row in enumerate(rows, start=2):
        label, term = (row.get("label") or "").strip(), (row.get("term") or "").strip()
        if not label or not term:
            raise ReportFileError(path, f"line {line_no}: empty label or term",
                                  "fill both, or delete the row")
        regex = (row.get("regex") or "").strip().lower() in ("1", "yes", "true", "x")
        try:
            vocab.add(label, term, regex)
        except re.error as err:
            at = "" if err.pos is None else f" (at character {err.pos + 1})"
            raise ReportFileError(path, f"line {line_no}: the term is not a valid regular "
                                        f"expression{at}",
                                  "fix it, or set regex to 0 to match it literally") from None
    return vocab
