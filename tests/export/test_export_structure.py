"""Input structures and weight deduplication behind save/load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from prunekit.errors import ExportError
from prunekit.export.structure import flatten_structure, unflatten_structure
from prunekit.export.weights import dedupe_state, read_weights, save_weights


def test_nested_structure_round_trips_through_json() -> None:
    a, b, c = torch.randn(2, 3), torch.arange(4), torch.ones(1, dtype=torch.bool)
    obj = (a, {"ids": b, "opts": [c, None, 2.5, "x", True]})
    spec, tensors = flatten_structure(obj)
    back = unflatten_structure(json.loads(json.dumps(spec)), tensors)
    assert isinstance(back, tuple) and isinstance(back[1]["opts"], list)
    assert torch.equal(back[0], a) and torch.equal(back[1]["ids"], b)
    assert torch.equal(back[1]["opts"][0], c) and back[1]["opts"][1:] == [None, 2.5, "x", True]
    assert sorted(tensors) == ["t0", "t1", "t2"]


def test_shared_input_memory_is_stored_separately() -> None:
    base = torch.randn(4, 3)
    _, tensors = flatten_structure((base, base[1:], base.t()))
    ptrs = {t.untyped_storage().data_ptr() for t in tensors.values()}
    assert len(ptrs) == 3 and all(t.is_contiguous() for t in tensors.values())


def test_bad_structures_are_named() -> None:
    with pytest.raises(ExportError, match=r"example_inputs\[0\]\['k'\] is a set"):
        flatten_structure(({"k": {1}},))
    with pytest.raises(ExportError, match="dict key 3"):
        flatten_structure({3: torch.ones(1)})
    with pytest.raises(ExportError, match="'t9' is listed"):
        unflatten_structure({"tensor": "t9"}, {})
    with pytest.raises(ExportError, match="kind 'set' is unknown"):
        unflatten_structure({"set": []}, {})


def test_dedupe_keeps_exact_aliases_and_copies_overlaps() -> None:
    w = torch.randn(4, 3)
    state = {"emb": w, "head": w, "rows": w[:2], "t": w.t(), "empty": torch.empty(0)}
    kept, tied = dedupe_state(state)
    assert tied == {"head": "emb"}
    assert sorted(kept) == ["emb", "empty", "rows", "t"]
    assert kept["rows"].untyped_storage().data_ptr() != w.untyped_storage().data_ptr()
    assert torch.equal(kept["t"], w.t())


def test_weights_file_restores_aliases(tmp_path: Path) -> None:
    emb = torch.nn.Embedding(5, 3)
    head = torch.nn.Linear(3, 5, bias=False)
    head.weight = emb.weight
    model = torch.nn.ModuleDict({"emb": emb, "head": head})
    assert save_weights(model, tmp_path / "w.safetensors") == {"head.weight": "emb.weight"}
    loaded = read_weights(tmp_path / "w.safetensors")
    assert sorted(loaded) == ["emb.weight", "head.weight"]
    assert torch.equal(loaded["head.weight"], emb.weight.detach())
