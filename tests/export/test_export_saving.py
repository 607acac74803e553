"""save/load: a pruned model round-trips through plans + safetensors, never pickle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from safetensors import safe_open
from torch import nn

import prunekit
from prunekit.errors import ExportError
from prunekit.export import load, read_meta, save
from prunekit.plan import pruning_history
from tests.zoo.common import call_model
from tests.zoo.models_cnn import resnet_basic
from tests.zoo.models_misc import mlp_dict_input


class TiedLM(nn.Module):
    """Embedding shared with the output head, an FFN in between."""

    def __init__(self, vocab: int = 20, dim: int = 12, hidden: int = 16) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.up = nn.Linear(dim, hidden)
        self.down = nn.Linear(hidden, dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.emb(ids)
        return self.head(h + self.down(torch.relu(self.up(h))))


def mlp(hidden: int = 16) -> nn.Module:
    return nn.Sequential(
        nn.Linear(6, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 3)
    )


@pytest.fixture
def no_torch_load(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("torch.load must never be called by prunekit.export.load")

    monkeypatch.setattr(torch, "load", refuse)


def assert_same_outputs(a: nn.Module, b: nn.Module, inputs: Any) -> None:
    with torch.no_grad():
        out_a, out_b = call_model(a.eval(), inputs), call_model(b.eval(), inputs)
    assert torch.equal(out_a, out_b)


def test_cnn_with_bn_and_residuals_round_trips(tmp_path: Path, no_torch_load: None) -> None:
    case = resnet_basic()
    res = prunekit.prune(case.model, case.example_inputs, ratio=0.5)
    out = save(res, tmp_path / "run", metrics={"accuracy": 0.5}, recipe={"ratio": 0.5})
    loaded = load(out, lambda: resnet_basic().model)
    assert_same_outputs(res.model, loaded, case.example_inputs)
    assert not loaded.training
    assert {k: v.shape for k, v in loaded.state_dict().items()} == {
        k: v.shape for k, v in res.model.state_dict().items()
    }
    meta = read_meta(out)
    assert meta["pruned"] is True and meta["num_steps"] == 1
    assert meta["params"] == sum(p.numel() for p in res.model.parameters())
    assert meta["params"] < sum(p.numel() for p in case.model.parameters())
    assert meta["model_class"].endswith(".ResNet")
    assert yaml.safe_load((out / "recipe.yaml").read_text()) == {"ratio": 0.5}
    assert json.loads((out / "metrics.json").read_text()) == {"accuracy": 0.5}


def test_files_are_safetensors_and_json_only(tmp_path: Path) -> None:
    net = mlp()
    res = prunekit.prune(net, torch.randn(2, 6), ratio=0.5)
    out = save(res, tmp_path)
    assert sorted(p.name for p in out.iterdir()) == [
        "inputs.safetensors",
        "meta.json",
        "model.safetensors",
        "plan.json",
    ]
    for name in ("model.safetensors", "inputs.safetensors"):
        raw = (out / name).read_bytes()
        header_len = int.from_bytes(raw[:8], "little")  # safetensors: u64 length + JSON header
        json.loads(raw[8 : 8 + header_len])
        assert not raw.startswith(b"\x80")  # a pickle stream starts with the PROTO opcode
    with safe_open(str(out / "model.safetensors"), framework="pt") as f:
        assert f.get_tensor("0.weight").shape == (8, 6)
    plan = json.loads((out / "plan.json").read_text())
    assert [len(s["removed"]) for s in plan["schedule"]] == [len(res.plan.removed)]


def test_two_step_prune_replays_both_steps(tmp_path: Path, no_torch_load: None) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 6)
    pruner = prunekit.Pruner(mlp(), x, ratio=0.25)
    pruner.step()
    model = pruner.step().model
    assert model[0].out_features == 9  # 16 -> 12 -> 9
    loaded = load(save(model, tmp_path), lambda: mlp())
    assert loaded[0].out_features == 9 and loaded[2].out_features == 9
    assert read_meta(tmp_path)["num_steps"] == 2
    assert_same_outputs(model, loaded, x)
    steps, inputs = pruning_history(loaded)
    assert len(steps) == 2 and torch.equal(inputs, x)
    assert [s.removed for s in steps] == [s.removed for s in pruning_history(model)[0]]


def test_dict_inputs_round_trip(tmp_path: Path) -> None:
    case = mlp_dict_input()
    res = prunekit.prune(case.model, case.example_inputs, ratio=0.5)
    out = save(res, tmp_path)
    assert read_meta(out)["inputs"] == {
        "dict": {"image": {"tensor": "t0"}, "meta": {"tensor": "t1"}}
    }
    loaded = load(out, mlp_dict_input().model)  # an instance works as the factory (copied)
    assert_same_outputs(res.model, loaded, case.example_inputs)


def test_tied_weights_are_stored_once_and_stay_tied(tmp_path: Path) -> None:
    torch.manual_seed(0)
    ids = torch.randint(0, 20, (2, 5))
    res = prunekit.prune(TiedLM(), ids, ratio=0.5)
    assert res.model.emb.weight.shape == (20, 6)  # the tied dim itself was cut
    out = save(res, tmp_path)
    with safe_open(str(out / "model.safetensors"), framework="pt") as f:
        names = set(f.keys())  # noqa: SIM118
    assert "emb.weight" in names and "head.weight" not in names
    assert read_meta(out)["tied"] == {"head.weight": "emb.weight"}
    loaded = load(out, TiedLM)
    assert loaded.head.weight is loaded.emb.weight
    assert_same_outputs(res.model, loaded, ids)


def test_unpruned_model_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = mlp()
    out = save(net, tmp_path)
    meta = read_meta(out)
    assert meta["pruned"] is False and meta["inputs"] is None
    assert not (out / "inputs.safetensors").exists()
    loaded = load(out, mlp)
    assert_same_outputs(net, loaded, torch.randn(3, 6))
    assert pruning_history(loaded) == ([], None)


def test_loaded_model_can_be_saved_and_pruned_again(tmp_path: Path) -> None:
    x = torch.randn(2, 6)
    res = prunekit.prune(mlp(), x, ratio=0.5)
    again = load(save(load(save(res, tmp_path / "a"), mlp), tmp_path / "b"), mlp)
    assert_same_outputs(res.model, again, x)
    further = prunekit.prune(again, x, ratio=0.5).model
    reloaded = load(save(further, tmp_path / "c"), mlp)
    assert reloaded[0].out_features == 4 and read_meta(tmp_path / "c")["num_steps"] == 2
    assert_same_outputs(further, reloaded, x)


def test_wrong_factory_class_is_named(tmp_path: Path) -> None:
    res = prunekit.prune(mlp(), torch.randn(2, 6), ratio=0.5)
    save(res, tmp_path)
    with pytest.raises(ExportError, match=r"TiedLM.*Sequential"):
        load(tmp_path, TiedLM)


def test_wrong_configuration_names_the_group(tmp_path: Path) -> None:
    res = prunekit.prune(mlp(16), torch.randn(2, 6), ratio=0.5)
    save(res, tmp_path)
    with pytest.raises(ExportError, match=r"plan step 1 of 1 .*expects 16 units.*factory"):
        load(tmp_path, lambda: mlp(32))


def test_weights_that_do_not_fit_name_the_tensor(tmp_path: Path) -> None:
    x = torch.randn(2, 6)
    res = prunekit.prune(mlp(), x, ratio=0.5)
    save(mlp(), tmp_path, plan=res.plan, example_inputs=x)  # unpruned weights, pruned plan
    with pytest.raises(ExportError, match=r"'0.weight': file \(16, 6\), model \(8, 6\)"):
        load(tmp_path, mlp)


def test_strict_false_loads_the_common_tensors(tmp_path: Path) -> None:
    net = mlp()
    save(net, tmp_path)
    bigger = nn.Sequential(*mlp(), nn.Linear(3, 2))
    with pytest.raises(ExportError, match=r"not in the model|missing from the file"):
        load(tmp_path, lambda: nn.Sequential(*mlp(), nn.Linear(3, 2)))
    loaded = load(tmp_path, bigger, strict=False)
    assert torch.equal(loaded[0].weight, net[0].weight)


def test_plan_without_inputs_is_refused(tmp_path: Path) -> None:
    res = prunekit.prune(mlp(), torch.randn(2, 6), ratio=0.5)
    with pytest.raises(ExportError, match="example_inputs="):
        save(mlp(), tmp_path, plan=res.plan)


def test_damaged_or_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="nope does not exist"):
        load(tmp_path / "nope", mlp)
    save(mlp(), tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ExportError, match="damaged"):
        load(tmp_path, mlp)
    (tmp_path / "meta.json").write_text('{"format": 99}')
    with pytest.raises(ExportError, match="format 99"):
        load(tmp_path, mlp)


def test_unstorable_metrics_and_inputs(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="metrics cannot be written"):
        save(mlp(), tmp_path, metrics={"f": object()})
    res = prunekit.prune(mlp(), torch.randn(2, 6), ratio=0.5)
    with pytest.raises(ExportError, match=r"example_inputs\[1\] is a object"):
        save(res, tmp_path, example_inputs=(torch.randn(2, 6), object()))


class FakeHF(nn.Sequential):
    """Stands in for a transformers PreTrainedModel: has ``save_pretrained``."""

    def save_pretrained(self, directory: str) -> None:
        Path(directory).mkdir(parents=True)
        (Path(directory) / "config.json").write_text(json.dumps({"width": self[0].out_features}))


def test_hugging_face_models_also_save_pretrained(tmp_path: Path) -> None:
    x = torch.randn(2, 6)
    res = prunekit.prune(FakeHF(*mlp()), x, ratio=0.5)
    save(res, tmp_path / "auto")
    assert json.loads((tmp_path / "auto" / "hf" / "config.json").read_text()) == {"width": 8}
    assert read_meta(tmp_path / "auto")["hf"] is True
    save(res, tmp_path / "auto", hf=False)  # a re-save removes the stale hf/ folder
    assert not (tmp_path / "auto" / "hf").exists()
    with pytest.raises(ExportError, match="no save_pretrained"):
        save(mlp(), tmp_path / "plain", hf=True)
