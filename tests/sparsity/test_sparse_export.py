"""Compact export of sparse weights: round trip to identical weights, fewer bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from prunekit.errors import ConfigError, PlanError
from prunekit.models import DigitsCNN
from prunekit.sparsity import load_sparse, make_permanent, prune_weights, save_sparse


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a
    )


@pytest.mark.parametrize("how", [{"sparsity": 0.5}, {"sparsity": 0.9}, {"pattern": "2:4"}])
def test_round_trip_is_identical_and_smaller(how: dict[str, object], tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = DigitsCNN(width=32)
    masked = prune_weights(model, ignore=["conv1"], **how)  # type: ignore[arg-type]
    report = save_sparse(masked, tmp_path / "m.safetensors")
    plain = make_permanent(masked).state_dict()
    loaded = load_sparse(tmp_path / "m.safetensors")
    assert same(loaded, plain)
    fresh = DigitsCNN(width=32)
    fresh.load_state_dict(loaded)
    assert report.file_bytes < report.dense_bytes
    assert report.file_bytes == (tmp_path / "m.safetensors").stat().st_size
    assert report.encodings["conv2.weight"] == "bitmask"
    assert report.encodings["conv1.weight"] == "dense"  # ignored: dense is smaller
    assert report.dense_bytes == sum(t.numel() * t.element_size() for t in plain.values())
    print(f"\n{how}: {report.dense_bytes:,} -> {report.file_bytes:,} bytes ({report.ratio:.3f})")


def test_dtypes_ties_and_state_dicts(tmp_path: Path) -> None:
    emb = nn.Embedding(50, 16)
    head = nn.Linear(16, 50, bias=False)
    head.weight = emb.weight  # tied
    model = nn.ModuleDict({"emb": emb, "head": head, "fc": nn.Linear(16, 16).half()})
    with torch.no_grad():
        emb.weight[emb.weight.abs() < 1.0] = 0.0
        model["fc"].weight[:, ::2] = 0
    report = save_sparse(model, tmp_path / "t.safetensors")
    assert report.encodings["head.weight"] == "alias:emb.weight"
    assert report.encodings["fc.weight"] == "bitmask"
    loaded = load_sparse(tmp_path / "t.safetensors")
    assert same(loaded, {k: v.detach() for k, v in model.state_dict().items()})
    assert loaded["fc.weight"].dtype == torch.float16
    state = {"w": torch.zeros(4, 4), "steps": torch.tensor(3)}
    save_sparse(state, tmp_path / "s.safetensors")
    assert same(load_sparse(tmp_path / "s.safetensors"), state)


def test_bad_inputs_raise(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"entries \['meta'\] are not tensors"):
        save_sparse({"meta": "x"}, tmp_path / "x.safetensors")  # type: ignore[dict-item]
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(PlanError, match="not a prunekit sparse export"):
        load_sparse(tmp_path / "plain.safetensors")
