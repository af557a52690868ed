"""A generated corpus of chest X-ray diagnosis reports with planted diseases, for tests and the
report-labels benchmark (no real reports can be shipped: they carry patient information).

Each image gets either a normal report or one to three planted diseases (frequencies shaped
like the paper's Table I), in Chinese (70%) or English, each disease written in one of several
variant wordings, with digits (sizes, rib numbers, list numbering) and typos (Chinese: a
look-alike/sound-alike character swapped in, a character dropped or doubled; English: letters
swapped, dropped or doubled), and sometimes a boilerplate clause ("请结合临床", "follow-up
recommended"). The ground truth is kept per clause: ``Corpus.clause_group`` maps every
normalised clause to its planted group ``"<disease>:<language>"`` (clusters are per language:
edit distance cannot see that 胸腔积液 and "pleural effusion" mean the same thing).

    python -m chexnet.training.reports.corpus OUT.csv --n 16000 --seed 0
"""

from __future__ import annotations

import argparse
import csv
import random
from dataclasses import dataclass
from pathlib import Path

from chexnet.training.reports.assertion_clauses import mining_clauses
from chexnet.training.reports.clauses import split_clauses

NORMAL = "normal"
BOILERPLATE = "boilerplate"  # clauses that name no finding; a user marks their cluster ignored

# disease -> (relative frequency among abnormal images, Chinese variants, English variants).
# ``{n}`` is replaced by a number, so digit removal is exercised.
DISEASES: dict[str, tuple[float, tuple[str, ...], tuple[str, ...]]] = {
    "increased lung marking": (0.40, ("双肺纹理增多", "双肺纹理增粗", "两肺纹理增多",
                                      "双肺纹理增多增粗", "两肺纹理稍增多"),
                               ("increased lung markings", "increased bilateral lung markings",
                                "slightly increased lung markings")),
    "aortosclerosis": (0.25, ("主动脉硬化", "主动脉迂曲硬化", "主动脉弓硬化", "主动脉结钙化"),
                       ("aortic sclerosis", "aortic arch sclerosis", "aortic sclerosis noted")),
    "increased heart shadow": (0.10, ("心影增大", "心影稍大", "心影明显增大", "心影向左下增大"),
                               ("enlarged heart shadow", "enlarged cardiac shadow",
                                "mildly enlarged heart shadow")),
    "pleural effusion": (0.05, ("胸腔积液", "左侧胸腔积液", "右侧胸腔少量积液", "双侧胸腔积液"),
                         ("pleural effusion", "left pleural effusion",
                          "small right pleural effusion")),
    "pulmonary infection": (0.07, ("肺部感染", "右下肺感染", "左下肺感染可能", "双肺感染性病变"),
                            ("pulmonary infection", "right lower lung infection",
                             "possible pulmonary infection")),
    "nodule": (0.05, ("右肺结节", "左上肺小结节", "右下肺见一约{n}cm结节", "右肺第{n}前肋间结节"),
               ("pulmonary nodule", "nodule of {n} cm in the right lung",
                "small pulmonary nodule")),
    "pleural thickening": (0.08, ("胸膜增厚", "左侧胸膜增厚", "双侧胸膜肥厚", "右侧胸膜局部增厚"),
                           ("pleural thickening", "left pleural thickening",
                            "bilateral pleural thickening")),
}
NORMAL_VARIANTS = (("心肺未见明显异常", "心肺未见异常", "心肺膈未见明显异常",
                    "两肺心膈未见明显异常"),
                   ("no active disease", "no active disease seen", "no active lung disease"))
# Clauses that name no finding; a user marks their clusters ignored. Two phrases, each with
# near variants, so they are two planted groups per language.
BOILERPLATE_VARIANTS = {
    "correlate clinically": (("请结合临床", "请结合临床病史", "请结合临床检查"),
                             ("please correlate clinically", "correlate clinically",
                              "please correlate clinically if needed")),
    "follow-up": (("建议复查", "建议随诊复查", "建议定期复查"),
                  ("follow-up recommended", "follow-up is recommended",
                   "short-term follow-up recommended")),
}

# Free-text variety (``variety`` > 0): where and how much, added around a finding's wording.
ZH_PREFIX = ("左上肺", "左下肺", "右上肺", "右中肺", "右下肺", "双侧", "局部", "轻度", "少许",
             "较前")
ZH_SUFFIX = ("可能", "改变", "待排", "考虑", "较前相仿", "请随访", "大致同前")
EN_PREFIX = ("mild", "moderate", "minimal", "possible", "small", "left", "right", "bilateral",
             "again", "stable")
EN_SUFFIX = ("noted", "seen", "again noted", "unchanged", "is likely", "cannot be excluded")

# Look-alike / sound-alike characters, the kind of slip a typist makes with a pinyin IME.
ZH_CONFUSABLE = {"增": "憎", "纹": "文", "积": "集", "硬": "梗", "影": "映", "结": "节", "膜": "模",
                 "感": "敢", "异": "易", "肺": "废", "脉": "麦", "胸": "匈", "厚": "后", "液": "夜",
                 "常": "长", "染": "冉"}


@dataclass(frozen=True)
class Corpus:
    """Reports (one per image), the planted diseases per image, and the planted group of
    every normalised clause that occurs."""

    reports: tuple[str, ...]
    diseases: tuple[frozenset[str], ...]
    languages: tuple[str, ...]
    clause_group: dict[str, str]

    def groups(self) -> list[str]:
        return sorted(set(self.clause_group.values()))


def _typo(text: str, lang: str, rng: random.Random) -> str:
    chars = list(text)
    if lang == "zh":
        swappable = [i for i, c in enumerate(chars) if c in ZH_CONFUSABLE]
        kind = rng.choice(("swap", "drop", "double")) if swappable else "double"
        if kind == "swap":
            i = rng.choice(swappable)
            chars[i] = ZH_CONFUSABLE[chars[i]]
        else:
            i = rng.randrange(len(chars))
            chars[i:i + 1] = [] if kind == "drop" and len(chars) > 3 else [chars[i], chars[i]]
        return "".join(chars)
    letters = [i for i, c in enumerate(chars[:-1]) if c.isalpha() and chars[i + 1].isalpha()]
    i = rng.choice(letters)
    kind = rng.choice(("swap", "drop", "double"))
    if kind == "swap":
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
    elif kind == "drop":
        del chars[i]
    else:
        chars.insert(i, chars[i])
    return "".join(chars)


def _clause(variants: tuple[str, ...], lang: str, rng: random.Random, typo_rate: float,
            variety: float = 0.0) -> str:
    text = rng.choice(variants).replace("{n}", str(rng.choice((1, 2, 3, 4, 1.5, 0.8, 2.3))))
    if variety > 0:  # no extra random draws at 0, so the default corpus stays as it was
        sep = "" if lang == "zh" else " "
        if rng.random() < variety:
            text = rng.choice(ZH_PREFIX if lang == "zh" else EN_PREFIX) + sep + text
        if rng.random() < variety:
            text = text + sep + rng.choice(ZH_SUFFIX if lang == "zh" else EN_SUFFIX)
        while rng.random() < typo_rate * variety:  # several typos in one clause
            text = _typo(text, lang, rng)
    return _typo(text, lang, rng) if rng.random() < typo_rate else text


def generate_corpus(n: int, seed: int = 0, typo_rate: float = 0.15,
                    normal_share: float = 0.5, zh_share: float = 0.7,
                    variety: float = 0.0) -> Corpus:
    """``n`` reports; the same arguments always give the same corpus. ``variety`` (0..1) is
    the chance of a location/degree prefix and of a hedge suffix on each finding, and scales
    the chance of extra typos: free text closer to a real PACS export, with many more distinct
    clauses (the benchmark uses it)."""
    rng = random.Random(seed)
    names = list(DISEASES)
    weights = [DISEASES[d][0] for d in names]
    reports, diseases, languages = [], [], []
    clause_group: dict[str, str] = {}

    def emit(text: str, group: str, lang: str) -> str:
        # keyed by both clause rules: the paper's (split_clauses) and the assertion-aware one
        # labels-from-reports clusters (mining_clauses)
        for clause in (*split_clauses(text), *mining_clauses(text)):
            clause_group.setdefault(clause, f"{group}:{lang}")
        return text

    for _ in range(n):
        lang = "zh" if rng.random() < zh_share else "en"
        li = 0 if lang == "zh" else 1
        if rng.random() < normal_share:
            planted = frozenset({NORMAL})
            clauses = [emit(_clause(NORMAL_VARIANTS[li], lang, rng, typo_rate), NORMAL, lang)]
        else:
            count = rng.choices((1, 2, 3), weights=(0.55, 0.3, 0.15))[0]
            picked: list[str] = []
            while len(picked) < count:
                d = rng.choices(names, weights=weights)[0]
                if d not in picked:
                    picked.append(d)
            planted = frozenset(picked)
            clauses = [emit(_clause(DISEASES[d][1 + li], lang, rng, typo_rate, variety), d,
                                 lang)
                       for d in picked]
        if rng.random() < 0.2:
            phrase = rng.choice(sorted(BOILERPLATE_VARIANTS))
            clauses.append(emit(_clause(BOILERPLATE_VARIANTS[phrase][li], lang, rng, typo_rate),
                                f"{BOILERPLATE}/{phrase}", lang))
        reports.append(_join(clauses, lang, rng))
        diseases.append(planted)
        languages.append(lang)
    return Corpus(tuple(reports), tuple(diseases), tuple(languages), clause_group)


def _join(clauses: list[str], lang: str, rng: random.Random) -> str:
    numbered = len(clauses) > 1 and rng.random() < 0.4
    if lang == "zh":
        parts = [f"{i}、{c}" if numbered else c for i, c in enumerate(clauses, start=1)]
        return rng.choice(("；", "，", "。")).join(parts) + "。"
    parts = [f"{i}. {c}" if numbered else c for i, c in enumerate(clauses, start=1)]
    return rng.choice(("; ", ". ", ", ")).join(parts) + "."


def write_reports_csv(corpus: Corpus, path: str | Path, image_dir: str = "images",
                      encoding: str = "utf-8") -> Path:
    """Write ``path,patient_id,diagnosis`` rows (image names ``<image_dir>/img_00000.png``)."""
    path = Path(path)
    with open(path, "w", newline="", encoding=encoding) as fh:
        w = csv.writer(fh)
        w.writerow(["path", "patient_id", "diagnosis"])
        for i, report in enumerate(corpus.reports):
            w.writerow([f"{image_dir}/img_{i:05d}.png", f"P{i // 2:05d}", report])
    return path


def textbook_levenshtein(a: str, b: str) -> int:
    """The textbook dynamic programme, kept as the independent reference the tests compare
    rapidfuzz with and the naive baseline the benchmark times (never used for real work)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        cur = [i]
        for j, cb in enumerate(b, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Write a generated reports CSV (path, patient_id, "
                                            "diagnosis) with planted diseases.")
    p.add_argument("out", type=Path)
    p.add_argument("--n", type=int, default=16_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--typo-rate", type=float, default=0.15)
    p.add_argument("--variety", type=float, default=0.0)
    args = p.parse_args(argv)
    write_reports_csv(generate_corpus(args.n, args.seed, args.typo_rate, variety=args.variety),
                      args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

