"""A generated corpus of English chest X-ray reports written the way radiologists write them
(MIMIC-CXR / IU-style findings and impressions), with planted truth per finding, for tests and
the report-labels benchmark.

Each report states some ChestX-ray14 findings as present, hedges others, rules out others in
the lists radiologists use ("No focal consolidation, pleural effusion or pneumothorax."),
compares with priors ("unchanged from ___"), carries anonymisation tokens (XXXX, ___,
[**...**]) and sentences that name no finding (devices, bones, who was called). The truth of
each finding is what the sentence that names it means, by the CheXpert labeller's convention:
1 stated, -1 hedged ("may", "possible", "cannot exclude", "versus", "likely"), 0 ruled out or
not named. The phrases are this module's own; the labeller (:mod:`.assertion`, :mod:`.cues`,
:mod:`.findings`) shares none of them.

    python -m chexnet.training.reports.realistic OUT.csv --n 16000 --seed 0
"""

from __future__ import annotations

import argparse
import csv
import random
from dataclasses import dataclass
from pathlib import Path

from chexnet.inference.package.card import CHESTXRAY14_LABELS

# label -> (weight, sentences stating it, noun phrases for lists of what is absent, hedges).
# "{side}" is filled with a side or a lobe, "{size}" with a size word, "{mm}" with a number.
W = {
    "Effusion": (0.18, ("{Size} {side} pleural effusion.", "There is a {size} {side} pleural "
                        "effusion.", "{Size} bilateral pleural effusions, unchanged from XXXX.",
                        "Layering {side} pleural effusion.", "Persistent {size} {side} pleural "
                        "effusion with adjacent atelectasis.", "{Size} {side} effusion has "
                        "decreased in size since XXXX.", "No significant change in the {size} "
                        "bilateral pleural effusions."),
                 ("pleural effusion", "pleural effusions", "large pleural effusion", "effusion"),
                 ("Possible {size} {side} pleural effusion.", "Cannot rule out a small {side} "
                  "pleural effusion.", "A small {side} effusion is suspected.",
                  "Blunting of the {side} costophrenic angle may reflect a small effusion.")),
    "Atelectasis": (0.14, ("{Side} basilar atelectasis.", "Bibasilar atelectasis.",
                           "Plate-like atelectasis at the {side} lung base.", "Subsegmental "
                           "atelectasis in the {lobe}.", "Streaky {side} basilar opacity "
                           "consistent with atelectasis.", "{Lobe_cap} collapse.", "Volume loss "
                           "in the {lobe} with atelectasis.", "Atelectasis at the {side} base "
                           "is again noted."),
                    ("atelectasis",),
                    ("{Side} basilar opacity, which may represent atelectasis.", "Bibasilar "
                     "opacities likely atelectasis.")),
    "Cardiomegaly": (0.12, ("{Size_deg} cardiomegaly.", "The heart is {deg} enlarged.",
                            "Stable {deg2} cardiomegaly.", "The cardiac silhouette is enlarged.",
                            "Heart size is {deg} enlarged, unchanged from the prior study.",
                            "Cardiomegaly is again noted.", "Enlargement of the cardiac "
                            "silhouette is unchanged."),
                     ("cardiomegaly",),
                     ("Borderline cardiomegaly.", "Possible mild cardiomegaly, accentuated by "
                      "the AP technique.")),
    "Edema": (0.09, ("{Deg} pulmonary edema.", "{Deg} interstitial edema.", "Findings "
                     "consistent with {deg2} pulmonary edema.", "Pulmonary vascular congestion "
                     "and {deg2} interstitial edema.", "Interval improvement in pulmonary "
                     "edema, which is now {deg2}.", "{Deg} interstitial pulmonary edema has "
                     "improved."),
              ("pulmonary edema", "edema", "vascular congestion"),
              ("Findings may reflect mild pulmonary edema.", "Hazy opacities, possibly mild "
               "edema.")),
    "Pneumothorax": (0.07, ("{Size} {side} apical pneumothorax.", "There is a {size} {side} "
                            "pneumothorax.", "Tiny residual {side} apical pneumothorax, "
                            "decreased since XXXX.", "{Size} {side} pneumothorax, new since "
                            "the prior exam."),
                     ("pneumothorax", "pneumothoraces", "large pneumothorax"),
                     ("Questionable tiny {side} apical pneumothorax.", "A small {side} apical "
                      "pneumothorax cannot be excluded.")),
    "Consolidation": (0.07, ("{Lobe_cap} consolidation.", "Dense consolidation in the {lobe}.",
                             "Focal consolidation at the {side} lung base."),
                      ("focal consolidation", "consolidation", "confluent consolidation"),
                      ("Patchy {side} basilar opacity, atelectasis versus consolidation.",)),
    "Pneumonia": (0.07, ("{Lobe_cap} pneumonia.", "Multifocal pneumonia.", "Findings "
                         "consistent with pneumonia in the {lobe}.", "Worsening {lobe} "
                         "pneumonia."),
                  ("pneumonia", "evidence of pneumonia"),
                  ("Retrocardiac opacity may represent atelectasis or pneumonia.", "Cannot "
                   "exclude early pneumonia in the {lobe}.", "Subtle opacity at the {side} base "
                   "could represent early pneumonia.", "Opacity in the {lobe}, "
                   "concerning for pneumonia.")),
    "Nodule": (0.06, ("{mm} mm nodule in the {lobe}.", "Calcified nodule in the {lobe}, "
                      "unchanged.", "Multiple bilateral pulmonary nodules.", "Stable {mm} mm "
                      "{side} upper lobe nodule."),
               ("suspicious pulmonary nodule", "pulmonary nodules", "suspicious nodules"),
               ("Possible nodule in the {lobe}; recommend dedicated CT.",)),
    "Infiltration": (0.05, ("Patchy infiltrate in the {lobe}.", "Bilateral interstitial "
                            "infiltrates.", "Diffuse bilateral infiltrates, {trend}."),
                     ("infiltrate", "focal infiltrate"),
                     ("Possible infiltrate in the {lobe}.",)),
    "Emphysema": (0.05, ("Hyperinflated lungs with emphysema.", "Emphysematous changes in both "
                         "upper lobes.", "{Deg} emphysema."),
                  ("emphysema",), ("Hyperinflation, possibly emphysema.",)),
    "Mass": (0.03, ("{cm} cm mass in the {lobe}.", "{Side} hilar mass.", "Large mass in the "
                    "{lobe}, concerning for malignancy."),
             ("mass", "discrete mass"), ("Fullness of the {side} hilum, possibly a mass.",)),
    "Fibrosis": (0.03, ("Bibasilar fibrotic changes.", "Chronic interstitial fibrosis at the "
                        "lung bases.", "Pulmonary fibrosis, {trend}."),
                 ("fibrosis",), ("Reticular opacities, possibly early fibrosis.",)),
    "Pleural_Thickening": (0.03, ("{Side} apical pleural thickening.", "Biapical pleural "
                                  "thickening, unchanged.", "Bilateral pleural thickening."),
                           ("pleural thickening",), ("Possible {side} pleural thickening.",)),
    "Hernia": (0.01, ("{Size} hiatal hernia.", "Moderate hiatal hernia.", "Large hiatus "
                      "hernia, unchanged."),
               ("hiatal hernia",), ("Retrocardiac lucency, possibly a small hiatal hernia.",)),
}
NEGATED_LISTS = ("No {a}.", "No {a} or {b}.", "No {a}, {b}, or {c}.", "No {a}, {b} or {c}.",
                 "There is no {a} or {b}.", "There is no {a}.", "No evidence of {a}.",
                 "No evidence of {a} or {b}.", "The lungs are clear without {a}, {b}, or {c}.",
                 "Without evidence of {a} or {b}.", "Negative for {a}.", "No {a} is seen.",
                 "No {a} or {b} is identified.", "No definite {a}.",
                 "There is no {a}, {b} or {c}.", "No new {a} or {b}.", "{A} is not seen.",
                 "No {a} or {b} is seen.", "{A} or {b} is not identified.",
                 "Neither {a} nor {b}.", "There is no evidence of {a}.",
                 "No {a} is identified following the procedure.")
CONTRAST = ("but", "however,", "although there is")
STRUCTURED = ("{A}: none.", "{A}: None.", "{A}: absent.")
# Why the study was done: not a finding (the CheXpert labeller reads only the impression).
INDICATIONS = ("INDICATION: ___-year-old man with cough and fever, evaluate for pneumonia.",
               "HISTORY: Shortness of breath. Rule out pneumothorax.",
               "INDICATION: Chest pain.", "CLINICAL HISTORY: XXXX-year-old female with "
               "history of heart failure, assess for edema.", "REASON FOR EXAM: Fall, "
               "question rib fracture or pneumothorax.", "INDICATION: Fever. Possible "
               "pneumonia?")
RESOLVED = ("The previously seen {a} has resolved.", "Resolution of the previously noted {a}.",
            "Interval resolution of {a}.")
NORMAL = ("No acute cardiopulmonary process.", "No acute cardiopulmonary abnormality.",
          "The lungs are clear.", "Heart size is normal.", "Normal chest radiograph.",
          "The cardiomediastinal silhouette is within normal limits.", "No active disease.",
          "Heart size and mediastinal contours are normal.", "Lungs are well expanded.")
OTHER = ("Comparison: XXXX.", "Comparison is made to the prior study from ___.",
         "Compared to [**2150-3-12**], there is no significant change.",
         "Median sternotomy wires are intact.", "Degenerative changes of the thoracic spine.",
         "Osseous structures are unremarkable.", "Right IJ central venous catheter tip in the "
         "low SVC.", "Dr. XXXX was notified of the findings by phone at XXXX.",
         "Surgical clips in the right upper quadrant.", "Endotracheal tube terminates ___ cm "
         "above the carina.", "No acute osseous abnormality.", "PA and lateral views of the "
         "chest.", "Nasogastric tube courses below the diaphragm.", "Recommend follow-up "
         "radiographs after treatment.")
SIDES = ("left", "right")
LOBES = ("right upper lobe", "right middle lobe", "right lower lobe", "left upper lobe",
         "left lower lobe", "lingula")
SIZES = ("small", "moderate", "large", "trace")
DEGREES = ("mildly", "moderately", "markedly")
DEGREES2 = ("mild", "moderate", "severe")
TRENDS = ("unchanged", "not significantly changed", "similar to XXXX", "slightly worse")


@dataclass(frozen=True)
class RealisticCorpus:
    """Reports; per report, the planted value of every ChestX-ray14 label (1, 0, -1) and the
    labels its text rules out (named in a negation: truth 0, and never to be labelled 1)."""

    reports: tuple[str, ...]
    truth: tuple[dict[str, int], ...]
    ruled_out: tuple[frozenset[str], ...]


def _fill(template: str, rng: random.Random) -> str:
    side, lobe, size = rng.choice(SIDES), rng.choice(LOBES), rng.choice(SIZES)
    deg, deg2 = rng.choice(DEGREES), rng.choice(DEGREES2)
    return template.format(side=side, Side=side.capitalize(), lobe=lobe,
                           Lobe_cap=lobe.capitalize(), size=size, Size=size.capitalize(),
                           deg=deg, Deg=deg2.capitalize(), deg2=deg2,
                           Size_deg=deg2.capitalize(), mm=rng.choice((4, 6, 8, 11)),
                           cm=rng.choice(("2.5", "3.1", "4")), trend=rng.choice(TRENDS))


def _report(rng: random.Random) -> tuple[str, dict[str, int], frozenset[str]]:
    names = list(W)
    truth = dict.fromkeys(CHESTXRAY14_LABELS, 0)
    ruled_out: set[str] = set()
    sentences: list[str] = []
    if rng.random() < 0.35:
        sentences.append(rng.choice(OTHER))
    n_present = 0 if rng.random() < 0.4 else rng.choices((1, 2, 3), (0.55, 0.3, 0.15))[0]
    named: set[str] = set()
    while len(named) < n_present:
        label = rng.choices(names, [W[n][0] for n in names])[0]
        if label not in named:
            named.add(label)
            stated = _fill(rng.choice(W[label][1]), rng)
            candidates = [n for n in names if n not in named and n != "Atelectasis"]
            if rng.random() < 0.1 and stated[:4] not in ("The ", "Ther"):
                # a finding ruled out and one stated in one sentence: "No X, but small Y."
                other = rng.choice(candidates)
                named.add(other)
                ruled_out.add(other)
                stated = (f"No {rng.choice(W[other][2])}, {rng.choice(CONTRAST)} "
                          f"{stated[0].lower()}{stated[1:]}")
            sentences.append(stated)
            truth[label] = 1
            if "adjacent atelectasis" in stated or "with atelectasis" in stated:
                truth["Atelectasis"] = 1
                named.add("Atelectasis")
    if rng.random() < 0.25:
        label = rng.choice([n for n in names if n not in named])
        hedge = _fill(rng.choice(W[label][3]), rng)
        sentences.append(hedge)
        named.add(label)
        truth[label] = -1
        for other, word in (("Atelectasis", "atelectasis"), ("Pneumonia", "pneumonia"),
                            ("Consolidation", "consolidation"), ("Effusion", "effusion")):
            if word in hedge and truth[other] == 0:
                truth[other] = -1
                named.add(other)
    free = [n for n in names if n not in named]
    rng.shuffle(free)
    for _ in range(rng.choice((0, 1, 1, 2))):
        template = rng.choice(STRUCTURED if rng.random() < 0.08 else NEGATED_LISTS)
        k = template.count("{")
        picked, free = free[:k], free[k:]
        if len(picked) < k:
            break
        nouns = {key: rng.choice(W[label][2]) for key, label in zip("abc", picked, strict=False)}
        nouns["A"] = nouns["a"].capitalize()
        sentences.append(template.format(**nouns))
        named.update(picked)
        ruled_out.update(picked)
    if free and rng.random() < 0.05:
        label = free.pop()
        sentences.append(rng.choice(RESOLVED).format(a=W[label][2][0]))
        ruled_out.add(label)
    if (n_present == 0 and all(v == 0 for v in truth.values())) or rng.random() < 0.3:
        normal = [s for s in NORMAL if "Cardiomegaly" not in named or "Heart" not in s]
        sentences.extend(rng.sample(normal, rng.choice((1, 2))) if n_present == 0 else
                         [rng.choice(("Lungs are well expanded.", "No acute osseous "
                                      "abnormality."))])
    if rng.random() < 0.3:
        sentences.append(rng.choice(OTHER))
    body = sentences[:]
    head = rng.choice(INDICATIONS) + "\n" if rng.random() < 0.15 else ""
    if len(body) > 2 and rng.random() < 0.5:  # findings then impression, as a report reads
        cut = rng.randrange(1, len(body))
        return (f"{head}FINDINGS: {' '.join(body[:cut])}\nIMPRESSION: {' '.join(body[cut:])}",
                truth, frozenset(ruled_out))
    text = f"{head}IMPRESSION: {' '.join(body)}" if head else " ".join(body)
    return text, truth, frozenset(ruled_out)


def generate_realistic(n: int, seed: int = 0) -> RealisticCorpus:
    """``n`` reports; the same seed always gives the same corpus."""
    rng = random.Random(seed)
    reports, truth, ruled_out = [], [], []
    for _ in range(n):
        text, t, r = _report(rng)
        reports.append(text)
        truth.append(t)
        ruled_out.append(r)
    return RealisticCorpus(tuple(reports), tuple(truth), tuple(ruled_out))


def write_realistic_csv(corpus: RealisticCorpus, path: str | Path) -> Path:
    """``path,patient_id,report`` rows (images ``images/img_00000.png``)."""
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "patient_id", "report"])
        for i, text in enumerate(corpus.reports):
            w.writerow([f"images/img_{i:05d}.png", f"P{i // 2:05d}", text])
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Write generated English reports with planted "
                                            "findings (path, patient_id, report).")
    p.add_argument("out", type=Path)
    p.add_argument("--n", type=int, default=16_000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    write_realistic_csv(generate_realistic(args.n, args.seed), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
