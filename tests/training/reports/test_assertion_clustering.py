"""The clustering workflow made assertion-aware: negation lists stay whole, anonymisation tokens
are masked, clusters never mix assertion groups, suggestions come from the vocabulary, and the
warm-started k search finds the silhouettes the cold one does."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from chexnet.inference.package.card import CHESTXRAY14_LABELS
from chexnet.training.reports.assertion_clauses import clause_group, mining_clauses
from chexnet.training.reports.clauses import dedup_clauses
from chexnet.training.reports.cluster import distance_matrix, search_k
from chexnet.training.reports.corpus import generate_corpus
from chexnet.training.reports.findings import builtin_vocabulary
from chexnet.training.reports.mining import mine_clusters
from chexnet.training.reports.realistic import generate_realistic, write_realistic_csv
from chexnet.training.reports.report_files import read_reports

VOCAB = builtin_vocabulary()


@pytest.mark.parametrize(("text", "expected"), [
    ("No focal consolidation, pleural effusion, or pneumothorax.",
     ["no focal consolidation, pleural effusion, or pneumothorax"]),
    ("Increased lung markings, aortic sclerosis.", ["increased lung markings", "aortic sclerosis"]),
    ("No pneumothorax, but small left effusion, stable.",
     ["no pneumothorax, but small left effusion", "stable"]),
    ("Comparison XXXX. Comparison ___.", ["comparison _anon_", "comparison _anon_"]),
    ("Nodule 1.5 cm, 3 mm granuloma.", ["nodule cm", "mm granuloma"]),
    ("双肺纹理增多，主动脉硬化。未见气胸、胸腔积液。",
     ["双肺纹理增多", "主动脉硬化", "未见气胸、胸腔积液"]),
])
def test_mining_clauses_keep_negated_lists_and_mask_anonymisation(text, expected):
    assert mining_clauses(text) == expected


@pytest.mark.parametrize(("clause", "group"), [
    ("small left pleural effusion", "finding"),
    ("possible small left pleural effusion", "uncertain"),
    ("no focal consolidation, pleural effusion, or pneumothorax", "negated"),
    ("no acute cardiopulmonary process", "normal"),
    ("median sternotomy wires", "other"),
    ("no pneumothorax, but small left effusion", "finding"),
])
def test_clause_groups(clause, group):
    assert clause_group(clause, VOCAB) == group


def test_clusters_never_mix_assertion_groups_and_suggest_vocabulary_labels(tmp_path):
    corpus = generate_realistic(1500, seed=8)
    reports = read_reports(write_realistic_csv(corpus, tmp_path / "reports.csv"))
    m = mine_clusters(reports, k=40)
    groups = [clause_group(t, VOCAB) for t in m.clauses.texts]
    by_cluster: dict[int, set[str]] = {}
    for g, lab in zip(groups, m.clustering.labels, strict=True):
        by_cluster.setdefault(int(lab), set()).add(g)
    assert all(len(gs) == 1 for gs in by_cluster.values())
    assert {"finding", "uncertain", "negated", "other"} <= {g for gs in by_cluster.values()
                                                           for g in gs}
    for row in m.rows:
        if row.group in ("negated", "normal"):
            assert row.suggestion == "normal"
        elif row.group == "finding":
            assert row.suggestion in ("", *CHESTXRAY14_LABELS)
        elif row.group == "uncertain":
            assert row.suggestion == ""
    named = Counter(r.suggestion for r in m.rows if r.group == "finding" and r.suggestion)
    assert len(named) >= 5  # findings get clusters named after them
    # the clusters a reader would name "Effusion" hold no ruled-out effusion
    effusion = {r.cluster for r in m.rows if r.suggestion == "Effusion"}
    for text, lab in zip(m.clauses.texts, m.clustering.labels, strict=True):
        if int(lab) in effusion:
            assert clause_group(text, VOCAB) == "finding"


def test_warm_k_search_matches_the_cold_one():
    u = dedup_clauses(generate_corpus(1200, seed=2).reports)
    d = distance_matrix(list(u.texts))
    warm, cold = search_k(d, 5, 25), search_k(d, 5, 25, search="full")
    assert set(warm) == set(cold) == set(range(5, 26))
    diffs = [abs(warm[k][0] - cold[k][0]) for k in warm]
    assert max(diffs) <= 0.1, diffs  # another local optimum, now and then
    assert np.mean(diffs) <= 0.01, diffs
    best_warm = max(warm, key=lambda k: warm[k][0])
    best_cold = max(cold, key=lambda k: cold[k][0])
    assert cold[best_warm][0] >= cold[best_cold][0] - 0.02
    with pytest.raises(ValueError, match="choose warm or full"):
        search_k(d, 5, 6, search="coarse")
