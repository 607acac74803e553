"""Bad arguments to the deploy room raise ConfigError / DataError naming the value and the fix."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunekit.deploy import (
    Cascade,
    DisagreementDetector,
    Ensemble,
    confidence,
    evaluate_ensemble,
    greedy_selection,
    prune_ensemble,
)
from prunekit.errors import ConfigError, DataError
from tests.deploy.nets import Lookup, mlp


def pair() -> list[nn.Module]:
    return [nn.Linear(4, 3), nn.Linear(4, 3)]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"threshold": [0.5, 0.5]}, r"threshold=\[0.5, 0.5\] has 2 values for 2 stages; pass 1"),
        ({"threshold": -0.1}, r"threshold 0 is -0.1; each threshold must be a number >= 0"),
        ({"threshold": "high"}, r"threshold='high' must be a number"),
        ({"confidence": "softmax"}, r"confidence='softmax' is not a confidence score; use one of"),
    ],
)
def test_cascade_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Cascade(pair(), **kwargs)  # type: ignore[arg-type]


def test_cascade_needs_two_module_stages() -> None:
    with pytest.raises(ConfigError, match=r"two or more nn.Module stages, got 1"):
        Cascade([nn.Linear(4, 3)])
    with pytest.raises(ConfigError, match=r"stage 1 is a str"):
        Cascade([nn.Linear(4, 3), "original"])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="pass a list of models"):
        Cascade(nn.Linear(4, 3))  # type: ignore[arg-type]


def test_calibrate_goals() -> None:
    cascade = Cascade(pair())
    data = [(torch.randn(6, 4), torch.zeros(6, dtype=torch.long))]
    with pytest.raises(ConfigError, match="needs a goal: pass target_accuracy="):
        cascade.calibrate(data)
    with pytest.raises(ConfigError, match=r"target_accuracy=1.5 must be a number in \[0, 1\]"):
        cascade.calibrate(data, target_accuracy=1.5)
    with pytest.raises(
        ConfigError, match=r"target_recall names class 3; classes are the ints 0..2"
    ):
        cascade.calibrate(data, target_recall={3: 0.9})
    with pytest.raises(ConfigError, match=r"target_recall\[0\]=2 must be a number in \[0, 1\]"):
        cascade.calibrate(data, target_recall={0: 2})


def test_stage_outputs_must_be_matching_logits() -> None:
    mismatch = Cascade([nn.Linear(4, 3), nn.Linear(4, 5)], threshold=2.0)
    with pytest.raises(DataError, match=r"stage 1 returns logits of shape \(5,\).*same classes"):
        mismatch(torch.randn(2, 4))
    ints = Cascade([Lookup([[1.0, 0.0]]), nn.Identity()], threshold=2.0)
    with pytest.raises(DataError, match=r"stage 1's output is a torch.int64, not floating-point"):
        ints(torch.zeros(1, 1, dtype=torch.long))
    images = Cascade([nn.Identity(), nn.Identity()])
    with pytest.raises(DataError, match=r"shape \(1, 3, 2\); a classifier's logits are \(N, C\)"):
        images(torch.zeros(1, 3, 2))


def test_data_must_be_batches() -> None:
    with pytest.raises(DataError, match="not an iterable of batches"):
        Cascade(pair()).calibrate(torch.randn(4, 4), target_accuracy=0.5)
    with pytest.raises(DataError, match="yielded no batch"):
        Cascade(pair()).calibrate([], target_accuracy=0.5)


def test_detector_arguments() -> None:
    with pytest.raises(ConfigError, match=r"score='kl' is not a drop score; use one of"):
        DisagreementDetector(nn.Linear(4, 3), nn.Linear(4, 3), score="kl")
    with pytest.raises(ConfigError, match="original is a str; pass an nn.Module"):
        DisagreementDetector(nn.Linear(4, 3), "big")  # type: ignore[arg-type]
    det = DisagreementDetector(nn.Linear(4, 3), nn.Linear(4, 3))
    with pytest.raises(ConfigError, match=r"flag_rate=0 must be in \(0, 1\), e.g. 0.1"):
        det.calibrate([torch.randn(4, 4)], flag_rate=0)
    with pytest.raises(ConfigError, match="margin='wide' must be a number"):
        DisagreementDetector(nn.Linear(4, 3), nn.Linear(4, 3), margin="wide")  # type: ignore[arg-type]
    with pytest.raises(DataError, match=r"the pruned model returns logits \(2, 3\), the original"):
        DisagreementDetector(nn.Linear(4, 3), nn.Linear(4, 2)).flag(torch.randn(2, 4))


def test_ensemble_arguments() -> None:
    with pytest.raises(ConfigError, match=r"combine='median' is not a way to combine"):
        Ensemble(pair(), combine="median")
    with pytest.raises(ConfigError, match=r"weights=\[1\] must be 2 numbers >= 0"):
        Ensemble(pair(), weights=[1])
    with pytest.raises(ConfigError, match="member_options has 1 entries for 2 members"):
        prune_ensemble([mlp(), mlp()], torch.randn(2, 4), ratio=0.5, member_options=[{}])
    with pytest.raises(DataError, match="evaluate_ensemble needs labels"):
        evaluate_ensemble(Ensemble(pair()), [torch.randn(2, 4)])
    with pytest.raises(ConfigError, match=r"macs_budget=0 must be a positive number"):
        greedy_selection([torch.zeros(2, 2)], torch.zeros(2, dtype=torch.long), [1.0],
                         macs_budget=0)  # fmt: skip
    with pytest.raises(ConfigError, match="1 candidate outputs and 2 costs"):
        greedy_selection([torch.zeros(2, 2)], torch.zeros(2, dtype=torch.long), [1.0, 2.0],
                         macs_budget=5)  # fmt: skip


def test_confidence_of_bad_logits() -> None:
    with pytest.raises(DataError, match="is a torch.int64, not floating-point logits"):
        confidence(torch.ones(2, 3, dtype=torch.long))
