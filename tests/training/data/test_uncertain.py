"""Uncertain (-1) labels: reading them, the CheXpert policies (U-Ignore / U-Ones / U-Zeros), and
the masked loss checked against a BCE computed independently over the known entries."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from chexnet.training.data.labels import (
    LabelFileError,
    read_generic_csv,
    select_labels,
    single_label,
)
from chexnet.training.data.uncertain import apply_uncertain


def write(tmp_path, rows, header="path,patient_id,Effusion,Edema,normal"):
    path = tmp_path / "labels.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def table(tmp_path):
    return read_generic_csv(write(tmp_path, ["a.png,P1,1,-1,0", "b.png,P2,-1,0,0",
                                             "c.png,P3,0,0,1", "d.png,P4,-1,-1,0"]))


def test_minus_one_reads_as_int8_and_other_values_are_refused(tmp_path, table):
    assert table.y.dtype == np.int8
    np.testing.assert_array_equal(table.y, [[1, -1, 0], [-1, 0, 0], [0, 0, 1], [-1, -1, 0]])
    plain = read_generic_csv(write(tmp_path, ["a.png,P1,1,0,0"]))
    assert plain.y.dtype == np.uint8  # files without -1 read as before
    with pytest.raises(LabelFileError, match=r"line 2: label values must be 0 or 1 \(-1"):
        read_generic_csv(write(tmp_path, ["a.png,P1,2,0,0"]))


def test_policies_rewrite_only_the_uncertain_entries(table):
    assert apply_uncertain(table, "ignore") is table
    ones, zeros = apply_uncertain(table, "ones"), apply_uncertain(table, "zeros")
    unknown = table.y == -1
    np.testing.assert_array_equal(ones.y[unknown], 1)
    np.testing.assert_array_equal(zeros.y[unknown], 0)
    np.testing.assert_array_equal(ones.y[~unknown], table.y[~unknown])
    np.testing.assert_array_equal(zeros.y[~unknown], table.y[~unknown])
    assert ones.y.dtype == zeros.y.dtype == np.uint8
    with pytest.raises(ValueError, match="choose one of ignore, ones, zeros"):
        apply_uncertain(table, "maybe")


def test_abnormal_and_single_label_with_uncertain_values(table):
    # abnormal = not normal; the normal column here is never uncertain
    np.testing.assert_array_equal(select_labels(table, "abnormal").y[:, 0], [1, 1, 0, 1])
    no_normal = select_labels(table, "Effusion,Edema")
    abnormal = select_labels(no_normal, "abnormal").y[:, 0]  # any finding, else uncertain
    np.testing.assert_array_equal(abnormal, [1, -1, 0, -1])
    sub, summary = single_label(table)  # -1 is not a class: a is Effusion, b/d carry none
    assert list(sub.ids) == ["a.png", "c.png"]
    assert summary["left_out_unlabelled"] == 2


def bce(logit: float, target: float, pos_weight: float = 1.0) -> float:
    """Binary cross-entropy of one logit, written out (log-sum-exp form)."""
    log_p = -np.logaddexp(0.0, -logit)  # log sigmoid(x)
    log_q = -np.logaddexp(0.0, logit)  # log (1 - sigmoid(x))
    return -(pos_weight * target * log_p + (1 - target) * log_q)


def test_masked_loss_is_the_bce_over_the_known_entries_only():
    torch = pytest.importorskip("torch", reason="training extra (torch) not installed")
    from chexnet.training.fit.uncertain import MaskedBCEWithLogitsLoss

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (8, 3))
    target = rng.choice([-1.0, 0.0, 1.0], (8, 3))
    pos_weight = np.array([1.0, 3.0, 0.5])
    expected = np.mean([bce(logits[i, j], target[i, j], pos_weight[j])
                        for i in range(8) for j in range(3) if target[i, j] >= 0])
    got = MaskedBCEWithLogitsLoss(torch.tensor(pos_weight))(torch.tensor(logits),
                                                            torch.tensor(target))
    assert float(got) == pytest.approx(expected, rel=1e-9)
    # without -1 targets it is torch's own BCE, and its gradient skips the masked entries
    known = np.where(target < 0, 0.0, target)
    ref = torch.nn.BCEWithLogitsLoss()(torch.tensor(logits), torch.tensor(known))
    assert float(MaskedBCEWithLogitsLoss()(torch.tensor(logits), torch.tensor(known))) == (
        pytest.approx(float(ref), rel=1e-12))
    x = torch.tensor(logits, requires_grad=True)
    MaskedBCEWithLogitsLoss()(x, torch.tensor(target)).backward()
    assert torch.all(x.grad[torch.tensor(target) < 0] == 0)
    assert torch.all(x.grad[torch.tensor(target) >= 0] != 0)


def test_validation_aurocs_leave_out_the_uncertain_images():
    pytest.importorskip("torch", reason="training extra (torch) not installed")
    from chexnet.training.fit.uncertain import known_aurocs

    rng = np.random.default_rng(1)
    y = rng.choice([-1, 0, 1], (60, 2)).astype(np.int8)
    probs = rng.random((60, 2))
    got = known_aurocs(y, probs, ("a", "b"))
    for j, lb in enumerate(("a", "b")):
        keep = y[:, j] >= 0
        assert got[lb] == pytest.approx(roc_auc_score(y[keep, j], probs[keep, j]))
    assert got["mean"] == pytest.approx((got["a"] + got["b"]) / 2)
