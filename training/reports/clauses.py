"""Reports -> normalised clauses -> unique clauses with counts (step one of mining labels).

The hospital CAD paper (../shared/seeds/cxr-cad-vgg-resnet-reports-paper.txt, section IV.A)
splits each diagnosis into clauses, removes the digits ("variables": sizes, rib numbers, list
numbering) and compares clauses by edit distance. Here:

- digits go first, decimals and ranges whole (``1.5cm``, ``3-4``), so a decimal point never
  splits a clause; Unicode digits (full-width ``１２``) count too;
- clauses are split on Chinese punctuation (。；，、：！？) and Western (. ; , : ! ?) and on line
  breaks;
- each clause is normalised: Unicode NFKC (full-width Latin -> ASCII), lower case, whitespace
  collapsed, leading/trailing punctuation, brackets and list markers stripped;
- identical normalised clauses are counted once, with the images they occur in, so the
  distance matrix is n_unique^2, not n_occurrences^2.

The punctuation sets are written out here because no library splits mixed Chinese/English
clinical text on exactly the paper's rule; everything else is the standard library.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

# Clause boundaries: Chinese full-width (。；，、：！？ and the full-width forms of , ; : ! ?),
# Western sentence/clause punctuation, and line breaks.
CLAUSE_BOUNDARY = re.compile(r"[。；，、：！？;,:!?\n\r\u3000]+|\.(?!\d)")
# A number: integer, decimal, range or fraction, with an optional trailing percent sign.
NUMBER = re.compile(r"\d+(?:\s*[.．·/\-~～]\s*\d+)*\s*%?")
# Characters that carry no meaning at a clause's ends once split (brackets, quotes, dashes...).
EDGE_JUNK = " \t\"'`“”‘’()（）[]【】<>《》-—~～·*#/\\|．.。"
WHITESPACE = re.compile(r"\s+")


def remove_digits(text: str) -> str:
    """Drop every number (the paper's 'variables'), keeping the words around it."""
    return NUMBER.sub(" ", text)


def normalise_clause(clause: str) -> str:
    """One spelling per clause: NFKC, lower case, single spaces, no edge punctuation."""
    clause = unicodedata.normalize("NFKC", clause).lower()
    clause = WHITESPACE.sub(" ", clause)
    return clause.strip(EDGE_JUNK)


def split_clauses(text: str) -> list[str]:
    """Split a diagnosis into normalised clauses, digits removed, empty pieces dropped.

    >>> split_clauses("1、双肺纹理增多；2、主动脉硬化。")
    ['双肺纹理增多', '主动脉硬化']
    >>> split_clauses("Nodule 1.5 cm in the right lower lobe. No effusion")
    ['nodule cm in the right lower lobe', 'no effusion']
    """
    # NFKC first so full-width digits and punctuation (１，；) become the ASCII forms, except the
    # ideographic ones (。、) which NFKC keeps and CLAUSE_BOUNDARY lists explicitly.
    text = remove_digits(unicodedata.normalize("NFKC", text or ""))
    out = []
    for piece in CLAUSE_BOUNDARY.split(text):
        clause = normalise_clause(piece)
        if clause:
            out.append(clause)
    return out


@dataclass(frozen=True)
class UniqueClauses:
    """The distinct clauses of a corpus: ``texts[i]`` occurs ``counts[i]`` times, in the images
    ``images[i]`` (row indices into the report table, each listed once)."""

    texts: tuple[str, ...]
    counts: tuple[int, ...]
    images: tuple[tuple[int, ...], ...]
    per_image: tuple[tuple[int, ...], ...]  # image row -> indices into ``texts``

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def n_occurrences(self) -> int:
        return sum(self.counts)


def dedup_clauses(reports: Sequence[str] | Iterable[str],
                  split: Callable[[str], list[str]] = split_clauses) -> UniqueClauses:
    """Split every report (``split``: the paper's rule by default) and count identical clauses;
    order = first occurrence."""
    index: dict[str, int] = {}
    counts: list[int] = []
    images: list[list[int]] = []
    per_image: list[tuple[int, ...]] = []
    for row, report in enumerate(reports):
        seen: list[int] = []
        for clause in split(report):
            i = index.setdefault(clause, len(index))
            if i == len(counts):
                counts.append(0)
                images.append([])
            counts[i] += 1
            if not images[i] or images[i][-1] != row:
                images[i].append(row)
            if i not in seen:
                seen.append(i)
        per_image.append(tuple(seen))
    return UniqueClauses(tuple(index), tuple(counts), tuple(tuple(x) for x in images),
                         tuple(per_image))
