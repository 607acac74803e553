"""DigitsCNN: shapes, parameter count, determinism."""

from __future__ import annotations

import pytest
import torch

from prunekit.evaluation import count_params
from prunekit.models import DigitsCNN


@pytest.mark.parametrize("width", [1, 4, 32])
def test_output_shape(width: int) -> None:
    model = DigitsCNN(width=width)
    assert model(torch.randn(3, 1, 8, 8)).shape == (3, 10)


def test_param_count_by_hand() -> None:
    w = 8
    expected = (
        1 * w * 9  # conv1, no bias
        + 2 * w  # bn1
        + w * 2 * w * 9  # conv2
        + 2 * 2 * w  # bn2
        + 2 * w * 2 * w * 9  # conv3
        + 2 * 2 * w  # bn3
        + 2 * w * 10
        + 10  # fc
    )
    assert count_params(DigitsCNN(width=w)) == expected


def test_deterministic_given_seed() -> None:
    torch.manual_seed(0)
    a = DigitsCNN(width=4)
    torch.manual_seed(0)
    b = DigitsCNN(width=4)
    x = torch.randn(2, 1, 8, 8)
    a.eval()
    b.eval()
    assert torch.equal(a(x), b(x))


def test_num_classes_and_bad_width() -> None:
    assert DigitsCNN(width=2, num_classes=3)(torch.zeros(1, 1, 8, 8)).shape == (1, 3)
    with pytest.raises(ValueError, match="width"):
        DigitsCNN(width=0)
