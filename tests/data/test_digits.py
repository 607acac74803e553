"""The bundled digits loader: shapes, ranges, stratification, determinism."""

from __future__ import annotations

import pytest
import torch

from prunekit.data import load_digits


def test_shapes_and_dtypes() -> None:
    train, val = load_digits()
    assert len(train) + len(val) == 1797
    x, y = train.tensors
    assert x.shape == (len(train), 1, 8, 8)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert float(x.max()) == 1.0
    assert set(y.tolist()) == set(range(10))


def test_stratified_split() -> None:
    train, val = load_digits(val_fraction=0.2)
    y_train, y_val = train.tensors[1], val.tensors[1]
    counts_all = torch.bincount(torch.cat([y_train, y_val]), minlength=10)
    counts_val = torch.bincount(y_val, minlength=10)
    expected = torch.round(counts_all.double() * 0.2).long()
    assert torch.equal(counts_val, expected)
    assert abs(len(val) / 1797 - 0.2) < 0.01


def test_deterministic_and_disjoint() -> None:
    a_train, a_val = load_digits(seed=3)
    b_train, b_val = load_digits(seed=3)
    for a, b in ((a_train, b_train), (a_val, b_val)):
        assert all(torch.equal(s, t) for s, t in zip(a.tensors, b.tensors))
    c_train, c_val = load_digits(seed=4)
    assert not torch.equal(a_val.tensors[0], c_val.tensors[0])
    # no image row appears in both parts (rows are 64 grey levels; duplicates are rare, so
    # compare the index-free content by count instead)
    flat_train = {tuple(r.tolist()) for r in a_train.tensors[0].flatten(1)}
    flat_val = [tuple(r.tolist()) for r in a_val.tensors[0].flatten(1)]
    overlap = sum(r in flat_train for r in flat_val)
    assert overlap <= 5


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5])
def test_bad_fraction(bad: float) -> None:
    with pytest.raises(ValueError, match="val_fraction"):
        load_digits(val_fraction=bad)
