"""``labels-from-reports --auto`` on real reports with expert codes: the Indiana University chest
X-ray collection (OpenI, Demner-Fushman et al. 2016, JAMIA 23(2):304-310; 3,851 de-identified
reports, each coded by hand with MeSH / MTI terms such as "Pleural Effusion/right/small").

The CSV is not shipped and this script downloads nothing. Get ``indiana_reports.csv`` (columns
uid, MeSH, Problems, image, indication, comparison, findings, impression), e.g. from Kaggle
"raddar/chest-xrays-indiana-university" or the public GitHub repository
SaadSubhaniTheProgrammerVersion/Textual-Report-Generation-from-Chest-X-rays-Indiana-Dataset, and
keep it outside the repository (the reports are free text: never commit them).

    python benchmarks/eval_reports_iu.py --csv /tmp/iu/indiana_reports.csv [--mapping broad]
        [--vocabulary words.csv] [--show-errors N --finding Nodule]

Report text = the FINDINGS and IMPRESSION sections, joined with their headings (indication and
comparison are left out: why the study was done is not what it found). Reports coded "No
Indexing" (not coded) or with neither section are left out.

Truth: a report is positive for a finding when one of its MeSH terms' heading (the part before
the first "/") maps to it (``STRICT``: the finding's own MeSH heading and its narrower ones;
``--mapping broad`` adds Pulmonary Congestion -> Edema and Airspace Disease -> Infiltration, the
reading the built-in vocabulary and the CheXpert labeller take). Codes name what the reader
found, so a hedged finding may or may not be coded: ``--auto``'s uncertain (-1) is scored both
ways. The baseline is the same vocabulary matched without any assertion (a mention = present), so
the difference is what negation / uncertainty handling buys.

``--show-errors N`` prints N false positives and N false negatives of ``--auto`` for
``--finding`` with the report sentences that name it (report text: an explicit flag).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

from chexnet.inference.package.card import CHESTXRAY14_LABELS
from chexnet.training.reports.assertion import label_report, split_sentences
from chexnet.training.reports.findings import load_vocabulary

# MeSH heading (lower case) -> ChestX-ray14 finding.
STRICT: dict[str, str] = {
    "pulmonary atelectasis": "Atelectasis", "atelectasis": "Atelectasis",
    "cardiomegaly": "Cardiomegaly",
    "pleural effusion": "Effusion",
    "infiltrate": "Infiltration",
    "mass": "Mass",
    "nodule": "Nodule",
    "pneumonia": "Pneumonia", "bronchopneumonia": "Pneumonia",
    "pneumothorax": "Pneumothorax", "hydropneumothorax": "Pneumothorax",
    "hemopneumothorax": "Pneumothorax",
    "consolidation": "Consolidation",
    "pulmonary edema": "Edema",
    "emphysema": "Emphysema", "pulmonary emphysema": "Emphysema",
    "bullous emphysema": "Emphysema",
    "pulmonary fibrosis": "Fibrosis", "fibrosis": "Fibrosis",
    "hernia, hiatal": "Hernia", "hernia, diaphragmatic": "Hernia",
}
BROAD = {**STRICT, "pulmonary congestion": "Edema", "airspace disease": "Infiltration"}
UNCODED = "no indexing"
MIN_SUPPORT = 10


def codes_to_labels(mesh: str, mapping: dict[str, str]) -> set[str]:
    """The findings one report's MeSH cell names ("Thickening/pleura/..." is Pleural_Thickening;
    "Subcutaneous Emphysema" and "Cystic Fibrosis" are not lung findings and map to nothing)."""
    out = set()
    for term in mesh.split(";"):
        parts = [p.strip().lower() for p in term.split("/")]
        if parts[0] in mapping:
            out.add(mapping[parts[0]])
        elif parts[0] == "thickening" and "pleura" in parts[1:]:
            out.add("Pleural_Thickening")
    return out


def load_iu(path: Path, mapping: dict[str, str]) -> tuple[list[str], np.ndarray, dict[str, int]]:
    """Report texts and the truth matrix (reports x 14), and how many rows were left out why."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"MeSH", "findings", "impression"} <= set(rows[0]):
        sys.exit(f"{path}: not the IU report table (needs the columns MeSH, findings, impression;"
                 f" see this script's docstring for where to get it)")
    texts, truth, skipped = [], [], {"uncoded (No Indexing)": 0, "no findings/impression": 0}
    for r in rows:
        mesh = r["MeSH"] or ""
        if UNCODED in mesh.lower():
            skipped["uncoded (No Indexing)"] += 1
            continue
        findings, impression = (r["findings"] or "").strip(), (r["impression"] or "").strip()
        if not findings and not impression:
            skipped["no findings/impression"] += 1
            continue
        texts.append(f"FINDINGS: {findings}\nIMPRESSION: {impression}")
        labels = codes_to_labels(mesh, mapping)
        truth.append([lb in labels for lb in CHESTXRAY14_LABELS])
    return texts, np.array(truth, dtype=np.int8), skipped


def label_all(texts: list[str], vocab) -> tuple[np.ndarray, np.ndarray]:
    """``--auto``'s values (1/0/-1) and the keyword baseline's (any mention = 1)."""
    auto = np.array([[label_report(t, vocab).values[lb] for lb in CHESTXRAY14_LABELS]
                     for t in texts], dtype=np.int8)
    keyword = np.zeros_like(auto)
    for i, t in enumerate(texts):
        for s in split_sentences(t):
            for m in vocab.mentions(s):
                if m.label in CHESTXRAY14_LABELS:
                    keyword[i, CHESTXRAY14_LABELS.index(m.label)] = 1
    return auto, keyword


def scores(truth: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p, r, f, _ = precision_recall_fscore_support(truth, pred, average=None, zero_division=0)
    return p, r, f


def print_table(truth: np.ndarray, systems: dict[str, np.ndarray]) -> None:
    support = truth.sum(axis=0)
    names = list(systems)
    print("| finding | support | " + " | ".join(f"P / R / F1 {n}" for n in names) + " |")
    print("| --- | ---: |" + " --- |" * len(names))
    results = {n: scores(truth, pred) for n, pred in systems.items()}
    for j, lb in enumerate(CHESTXRAY14_LABELS):
        cells = [f"{results[n][0][j]:.2f} / {results[n][1][j]:.2f} / **{results[n][2][j]:.2f}**"
                 for n in names]
        print(f"| {lb} | {support[j]} | " + " | ".join(cells) + " |")
    big = support >= MIN_SUPPORT
    for title, mask in ((f"macro F1, support >= {MIN_SUPPORT} ({int(big.sum())})", big),
                        ("macro F1, all 14", np.ones_like(big))):
        cells = [f"**{results[n][2][mask].mean():.3f}**" for n in names]
        print(f"| {title} | | " + " | ".join(cells) + " |")


def print_errors(texts, truth, auto, vocab, finding: str, n: int) -> None:
    j = CHESTXRAY14_LABELS.index(finding)
    for kind, rows in (("false positive", np.flatnonzero((auto[:, j] == 1) & (truth[:, j] == 0))),
                       ("false negative", np.flatnonzero((auto[:, j] != 1) & (truth[:, j] == 1)))):
        print(f"\n## {finding}: {kind}s ({len(rows)}), first {n}")
        for i in rows[:n]:
            named = [s for s in split_sentences(texts[i])
                     if any(m.label == finding for m in vocab.mentions(s))]
            print(f"- auto={auto[i, j]}: " + (" | ".join(named) or "(not named) "
                                               + " ".join(split_sentences(texts[i]))[:300]))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", type=Path, required=True, help="indiana_reports.csv (see docstring)")
    ap.add_argument("--mapping", choices=("strict", "broad"), default="strict")
    ap.add_argument("--vocabulary", type=Path, help="extra terms, as for labels-from-reports")
    ap.add_argument("--show-errors", type=int, default=0, metavar="N",
                    help="print N false positives / negatives with report text (explicit flag)")
    ap.add_argument("--finding", default="Nodule", choices=CHESTXRAY14_LABELS)
    args = ap.parse_args(argv)
    if not args.csv.is_file():
        sys.exit(f"{args.csv}: no such file; see this script's docstring for where to get it")
    mapping = STRICT if args.mapping == "strict" else BROAD
    texts, truth, skipped = load_iu(args.csv, mapping)
    vocab = load_vocabulary(args.vocabulary)
    t0 = time.perf_counter()
    auto, keyword = label_all(texts, vocab)
    seconds = time.perf_counter() - t0
    print(f"# IU / OpenI reports: {len(texts)} scored, left out: "
          + ", ".join(f"{v} {k}" for k, v in skipped.items())
          + f"; mapping {args.mapping}; labelling both ways took {seconds:.1f} s\n")
    print_table(truth, {"`--auto`, uncertain = 1": (auto != 0).astype(np.int8),
                        "`--auto`, uncertain = 0": (auto == 1).astype(np.int8),
                        "keyword, no assertion": keyword})
    print("\nCodes absent, the report names the finding (keyword match): how `--auto` labels it")
    print("| finding | named, codes absent | `--auto` present | `--auto` uncertain |")
    print("| --- | ---: | ---: | ---: |")
    for j, lb in enumerate(CHESTXRAY14_LABELS):
        named = (truth[:, j] == 0) & (keyword[:, j] == 1)
        print(f"| {lb} | {int(named.sum())} | {int((named & (auto[:, j] == 1)).sum())} | "
              f"{int((named & (auto[:, j] == -1)).sum())} |")
    named = (truth == 0) & (keyword == 1)
    print(f"| all | {int(named.sum())} | {int((named & (auto == 1)).sum())} | "
          f"{int((named & (auto == -1)).sum())} |")
    if args.show_errors:
        print_errors(texts, truth, auto, vocab, args.finding, args.show_errors)


if __name__ == "__main__":
    main()
