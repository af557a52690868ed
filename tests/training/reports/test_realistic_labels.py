"""The --auto labeller on the realistic English corpus with planted truth: macro F1 over the 14
ChestX-ray14 findings >= 0.90, uncertain findings found as uncertain, and a finding the text
rules out never labelled present. The generator shares no phrase list with the labeller."""

from __future__ import annotations

import ast
import inspect

import numpy as np
import pytest
from sklearn.metrics import f1_score

from chexnet.inference.package.card import CHESTXRAY14_LABELS
from chexnet.training.reports import realistic
from chexnet.training.reports.assertion import label_report
from chexnet.training.reports.findings import builtin_vocabulary
from chexnet.training.reports.realistic import generate_realistic


@pytest.fixture(scope="module")
def labelled():
    corpus = generate_realistic(3000, seed=11)
    vocab = builtin_vocabulary()
    return corpus, [label_report(r, vocab).values for r in corpus.reports]


def test_macro_f1_over_the_fourteen_findings(labelled):
    corpus, pred = labelled
    f1 = {}
    for lb in CHESTXRAY14_LABELS:
        truth = np.array([t[lb] == 1 for t in corpus.truth])
        got = np.array([p[lb] == 1 for p in pred])
        assert truth.sum() >= 20, f"{lb}: too few planted positives to score"
        f1[lb] = f1_score(truth, got)
    assert min(f1.values()) >= 0.8, f1
    assert np.mean(list(f1.values())) >= 0.90, f1


def test_uncertain_findings_are_found_uncertain(labelled):
    corpus, pred = labelled
    truth = np.array([[t[lb] == -1 for lb in CHESTXRAY14_LABELS] for t in corpus.truth])
    got = np.array([[p[lb] == -1 for lb in CHESTXRAY14_LABELS] for p in pred])
    assert truth.sum() > 300
    assert f1_score(truth.ravel(), got.ravel()) >= 0.85


def test_a_finding_the_text_rules_out_is_never_labelled_present(labelled):
    corpus, pred = labelled
    checked = 0
    for ruled_out, p, t in zip(corpus.ruled_out, pred, corpus.truth, strict=True):
        for lb in ruled_out:
            assert t[lb] == 0
            assert p[lb] != 1, lb
            checked += 1
    assert checked > 2000  # negated lists are common in the corpus, as in real reports


def test_the_generator_imports_nothing_from_the_labeller():
    tree = ast.parse(inspect.getsource(realistic))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not imported & {"chexnet.training.reports.assertion", "chexnet.training.reports.cues",
                           "chexnet.training.reports.findings"}


def test_the_corpus_is_reproducible_and_varied():
    a, b = generate_realistic(200, seed=4), generate_realistic(200, seed=4)
    assert a == b
    assert len(set(a.reports)) > 190
    assert any("XXXX" in r or "___" in r or "[**" in r for r in a.reports)
