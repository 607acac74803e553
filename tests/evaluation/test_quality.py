"""Classification metrics against hand computations, cross-checked with sklearn.metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from prunekit.errors import ConfigError
from prunekit.evaluation import (
    accuracy,
    classification_quality,
    confusion_matrix,
    per_class_recall,
    per_class_scores,
    precision_recall_f1,
    top_k_accuracy,
)

# true class per sample, and the predictions (see the confusion matrix below)
TARGETS = [0, 0, 1, 1, 1, 2]
PREDS = [0, 0, 0, 1, 2, 2]
# cm[true][pred]: class 0 -> both right; class 1 -> one each as 0, 1, 2; class 2 -> right
CM = [[2, 0, 0], [1, 1, 1], [0, 0, 1]]
# TP = (2, 1, 1); predicted = (3, 1, 2); support = (2, 3, 1)
PRECISION = [2 / 3, 1.0, 1 / 2]
RECALL = [1.0, 1 / 3, 1.0]
F1 = [4 / 5, 1 / 2, 2 / 3]  # 2 TP / (predicted + support)


def test_accuracy_from_labels_and_scores() -> None:
    assert accuracy(PREDS, TARGETS) == pytest.approx(4 / 6)
    scores = torch.nn.functional.one_hot(torch.tensor(PREDS), 3).float() * 5.0
    assert accuracy(scores, TARGETS) == pytest.approx(4 / 6)
    assert accuracy(np.array(PREDS), np.array(TARGETS)) == pytest.approx(4 / 6)


def test_confusion_matrix_by_hand_and_sklearn() -> None:
    cm = confusion_matrix(PREDS, TARGETS)
    assert cm.dtype == torch.int64
    assert cm.tolist() == CM
    assert cm.tolist() == skm.confusion_matrix(TARGETS, PREDS).tolist()
    # a larger label space adds empty rows and columns
    assert confusion_matrix(PREDS, TARGETS, num_classes=4).tolist()[3] == [0, 0, 0, 0]


def test_per_class_scores_by_hand() -> None:
    s = per_class_scores(PREDS, TARGETS, num_classes=4)
    assert s.precision[:3] == pytest.approx(PRECISION)
    assert s.recall[:3] == pytest.approx(RECALL)
    assert s.f1[:3] == pytest.approx(F1)
    assert s.support == [2, 3, 1, 0]
    # class 3 is neither present nor predicted: undefined, not 0
    assert (s.precision[3], s.recall[3], s.f1[3]) == (None, None, None)
    assert per_class_recall(PREDS, TARGETS) == pytest.approx(RECALL)


def test_never_predicted_class_has_zero_f1_and_undefined_precision() -> None:
    s = per_class_scores([0, 0, 0], [0, 1, 1])
    assert s.precision == [pytest.approx(1 / 3), None]
    assert s.recall == [1.0, 0.0]
    assert s.f1 == [0.5, 0.0]


def test_macro_weighted_micro_by_hand() -> None:
    p, r, f = precision_recall_f1(PREDS, TARGETS, average="macro")
    assert (p, r, f) == pytest.approx((13 / 18, 7 / 9, 59 / 90))
    p, r, f = precision_recall_f1(PREDS, TARGETS, average="weighted")
    assert (p, r, f) == pytest.approx((29 / 36, 2 / 3, 113 / 180))
    p, r, f = precision_recall_f1(PREDS, TARGETS, average="micro")
    assert (p, r, f) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    # an absent class in a larger label space does not drag the macro average down
    macro4 = precision_recall_f1(PREDS, TARGETS, average="macro", num_classes=4)
    assert macro4 == pytest.approx((13 / 18, 7 / 9, 59 / 90))


@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
def test_averages_match_sklearn_on_random_labels(average: str) -> None:
    rng = np.random.default_rng(0)
    true = rng.integers(0, 5, size=200)
    pred = np.where(rng.random(200) < 0.6, true, rng.integers(0, 5, size=200))
    pred[pred == 4] = 3  # class 4 is never predicted: zero-division path
    ours = precision_recall_f1(pred, true, average=average)
    theirs = skm.precision_recall_fscore_support(true, pred, average=average, zero_division=0)
    assert ours == pytest.approx(theirs[:3])
    assert per_class_recall(pred, true) == pytest.approx(
        skm.recall_score(true, pred, average=None, zero_division=0).tolist()
    )


def test_top_k_by_hand_and_sklearn() -> None:
    scores = [
        [0.5, 0.3, 0.2],  # target 1: 2nd
        [0.1, 0.2, 0.7],  # target 0: 3rd
        [0.4, 0.35, 0.25],  # target 2: 3rd
        [0.2, 0.5, 0.3],  # target 1: 1st
    ]
    targets = [1, 0, 2, 1]
    assert top_k_accuracy(scores, targets, k=1) == pytest.approx(1 / 4)
    assert top_k_accuracy(scores, targets, k=2) == pytest.approx(2 / 4)
    assert top_k_accuracy(scores, targets, k=3) == 1.0
    assert top_k_accuracy(scores, targets, k=2) == pytest.approx(
        skm.top_k_accuracy_score(targets, scores, k=2)
    )


def test_classification_quality_loss_by_hand() -> None:
    logits = [[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]]
    q = classification_quality(logits, [0, 1, 1])
    # cross-entropy: -log softmax at the target
    by_hand = (
        math.log(1 + math.exp(-2.0)) + math.log(1 + math.exp(-1.0)) + math.log(1 + math.exp(1.0))
    ) / 3
    assert q.loss == pytest.approx(by_hand)
    assert q.accuracy == pytest.approx(2 / 3)
    assert q.confusion_matrix == [[1, 0], [1, 1]]
    assert q.top_k == {1: pytest.approx(2 / 3)}  # k = 5 > 2 classes is skipped
    assert q.mean_confidence == pytest.approx(
        (1 / (1 + math.exp(-2)) + 1 / (1 + math.exp(-1)) + 1 / (1 + math.exp(-1))) / 3
    )
    assert q.f1_micro == pytest.approx(q.accuracy)


def test_binary_logit_column() -> None:
    q = classification_quality([[-1.0], [2.0], [0.5]], [0, 1, 0])
    assert q.accuracy == pytest.approx(2 / 3)  # predictions 0, 1, 1
    by_hand = (
        math.log(1 + math.exp(-1)) + math.log(1 + math.exp(-2)) + math.log(1 + math.exp(0.5))
    ) / 3
    assert q.loss == pytest.approx(by_hand)  # binary cross-entropy with logits
    assert q.num_classes == 2


def test_labels_only_leave_out_logit_metrics() -> None:
    q = classification_quality([0, 1, 1], [0, 1, 0])
    assert q.loss is None and q.mean_confidence is None and q.ece is None and q.top_k == {}
    assert q.accuracy == pytest.approx(2 / 3)
    assert q.to_dict()["top_k"] == {}


def test_quality_dict_round_trip() -> None:
    q = classification_quality(torch.randn(30, 4), torch.randint(0, 4, (30,)), top_k=(1, 3))
    d = q.to_dict()
    assert set(d["top_k"]) == {"1", "3"}
    assert type(q).from_dict(d) == q


def test_bad_inputs_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="rows"):
        accuracy([0, 1], [0, 1, 1])
    with pytest.raises(ConfigError, match=r"k=4"):
        top_k_accuracy([[0.1, 0.9]], [1], k=4)
    with pytest.raises(ConfigError, match="num_classes=2"):
        confusion_matrix([0, 2], [0, 1], num_classes=2)
    with pytest.raises(ConfigError, match="average='samples'"):
        precision_recall_f1([0], [0], average="samples")
    with pytest.raises(ConfigError, match="non-integer"):
        accuracy(torch.tensor([0.5, 1.0]), [0, 1])
    with pytest.raises(ConfigError, match="empty"):
        accuracy([], [])
    with pytest.raises(ConfigError, match="targets hold class 3 but outputs have 2"):
        classification_quality([[0.0, 1.0]], [3])
