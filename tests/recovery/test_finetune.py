"""finetune: training, schedules, early stopping with restore, hooks, batch formats, errors."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from recovery_support import digits_batches
from torch import nn

from prunekit.errors import ConfigError, RecoveryError, RegistryError
from prunekit.recovery import accuracy, finetune, lr_factor


def flat(
    batches: list[tuple[torch.Tensor, torch.Tensor]],
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x.flatten(1), y) for x, y in batches]


def linear_setup() -> tuple[nn.Module, list[Any], list[Any]]:
    torch.manual_seed(0)
    return nn.Linear(64, 10), flat(digits_batches(128)), flat(digits_batches(512, split="val"))


def test_finetune_trains_and_reports_a_json_history() -> None:
    net, train, val = linear_setup()
    res = finetune(net, train, val_data=val, epochs=3, lr=0.5, progress=False)
    assert res.initial_metric is not None and res.initial_metric < 0.3
    assert res.best_metric is not None and res.best_metric > 0.85
    assert accuracy(net, val) == res.best_metric  # the best epoch's weights are in the model
    assert [r.epoch for r in res.history] == [1, 2, 3]
    assert res.steps == 3 * len(train)
    losses = [r.train_loss for r in res.history]
    assert losses[0] > losses[-1]
    per = len(train)  # lr recorded after the last step of each epoch (cosine)
    for r in res.history:
        assert r.lr == pytest.approx(0.5 * lr_factor(r.epoch * per - 1, 3 * per))
    out = json.loads(json.dumps(res.to_dict()))
    assert out["config"]["optimizer"] == "sgd" and out["config"]["val_data"] == "list"
    assert not res.stopped_early and res.seconds > 0


def test_same_seed_gives_identical_weights() -> None:
    nets = []
    for _ in range(2):
        net, train, _ = linear_setup()
        finetune(net, train, epochs=1, lr=0.1, optimizer="adam", progress=False, seed=3)
        nets.append(net)
    assert torch.equal(nets[0].weight, nets[1].weight)


class Scripted:
    """A metric that returns a fixed sequence and records the weights it was shown."""

    def __init__(self, values: list[float]) -> None:
        self.values, self.seen = list(values), []

    def __call__(self, model: nn.Module) -> float:
        self.seen.append(model.weight.detach().clone())
        return self.values[len(self.seen) - 1]


def test_early_stopping_stops_and_restores_the_best_epoch() -> None:
    net, train, _ = linear_setup()
    metric = Scripted([0.5, 0.6, 0.9, 0.7, 0.6, 0.95, 0.99])
    res = finetune(net, train, epochs=6, metric=metric, patience=2, lr=0.1, progress=False)
    assert res.stopped_early and len(res.history) == 4
    assert (res.best_epoch, res.best_metric, res.initial_metric) == (2, 0.9, 0.5)
    assert res.restored_best
    assert torch.equal(net.weight, metric.seen[2])  # weights validated after epoch 2
    assert not torch.equal(net.weight, metric.seen[4])


def test_min_delta_restore_best_false_and_initial_best() -> None:
    net, train, _ = linear_setup()
    metric = Scripted([0.8, 0.5, 0.4])
    res = finetune(net, train, epochs=2, metric=metric, progress=False)
    assert res.best_epoch == 0 and res.restored_best
    assert torch.equal(net.weight, metric.seen[0])  # back to the weights before fine-tuning
    net, train, _ = linear_setup()
    metric = Scripted([0.5, 0.9, 0.3])
    res = finetune(net, train, epochs=2, metric=metric, restore_best=False, progress=False)
    assert res.best_epoch == 1 and not res.restored_best
    assert torch.equal(net.weight, metric.seen[2])
    net, train, _ = linear_setup()
    res = finetune(
        net,
        train,
        epochs=2,
        metric=Scripted([0.5, 0.55, 0.7]),
        min_delta=0.1,
        patience=1,
        progress=False,
    )
    assert res.stopped_early and res.best_epoch == 0  # 0.55 is not an improvement of > 0.1


def test_grad_clip_bounds_the_update() -> None:
    torch.manual_seed(0)
    net = nn.Linear(4, 3)
    before = torch.cat([p.detach().flatten() for p in net.parameters()])
    data = [(torch.randn(8, 4) * 100, torch.randint(0, 3, (8,)))]
    finetune(
        net,
        data,
        lr=1.0,
        momentum=0.0,
        lr_schedule="constant",
        grad_clip=1e-3,
        epochs=1,
        progress=False,
    )
    after = torch.cat([p.detach().flatten() for p in net.parameters()])
    assert float((after - before).norm()) == pytest.approx(1e-3, rel=1e-4)


def test_warmup_weight_decay_groups_and_optimizer_choices() -> None:
    net, train, _ = linear_setup()
    res = finetune(net, train, epochs=2, lr=0.2, warmup=1.0, lr_schedule="constant", progress=False)
    assert [r.lr for r in res.history] == pytest.approx([0.2, 0.2])  # end of warm-up = peak
    seen: list[Any] = []

    def factory(groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
        seen.append(groups)
        return torch.optim.RMSprop(groups, lr=0.01)

    res = finetune(net, train, epochs=1, optimizer=factory, lr_schedule="constant", progress=False)
    assert [len(g["params"]) for g in seen[0]] == [1, 1]  # weights, then 1-D params
    assert res.history[0].lr == pytest.approx(0.01)  # the factory's own lr is the base
    for name in ("adam", "adamw"):
        finetune(net, train, epochs=1, optimizer=name, lr=1e-3, weight_decay=0.01, progress=False)
    with pytest.raises(RegistryError, match="adamw"):
        finetune(net, train, optimizer="lion", progress=False)


def test_augment_hook_custom_loss_and_metric_and_flags_restored() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 1), nn.Dropout(0.1)).eval()
    x = torch.randn(64, 3)
    y = x @ torch.tensor([[1.0], [2.0], [-1.0]])
    calls = []

    def augment(batch: Any) -> Any:
        calls.append(1)
        return batch[0] + 0.0, batch[1]

    def mse(out: torch.Tensor, batch: Any) -> torch.Tensor:
        return F.mse_loss(out, batch[1])

    def neg_mse(model: nn.Module) -> float:
        with torch.no_grad():
            return -float(F.mse_loss(model(x), y))

    res = finetune(net, [(x[:32], y[:32]), (x[32:], y[32:])], loss_fn=mse, metric=neg_mse,
                   epochs=5, lr=0.05, augment=augment, progress=False)  # fmt: skip
    assert len(calls) == 10
    assert res.best_metric is not None and res.initial_metric is not None
    assert res.best_metric > 0.5 * res.initial_metric  # error at least halved
    assert not net.training and not net[1].training


class TinyLM(nn.Module):
    """Hugging Face style: keyword inputs, an output object with .loss and .logits."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(5, 8)
        self.head = nn.Linear(8, 5)

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None) -> Any:
        logits = self.head(self.emb(input_ids))
        loss = None if labels is None else F.cross_entropy(logits.flatten(0, 1), labels.flatten())
        return SimpleNamespace(loss=loss, logits=logits)


def test_dict_batches_use_the_models_own_loss() -> None:
    torch.manual_seed(0)
    ids = torch.randint(0, 5, (16, 6))
    batches = [{"input_ids": ids, "labels": (ids + 1) % 5}]
    model = TinyLM()
    res = finetune(
        model, batches, val_data=batches, epochs=30, lr=0.5, lr_schedule="constant", progress=False
    )
    assert res.history[-1].train_loss < 0.5 * res.history[0].train_loss
    assert res.best_metric == 1.0  # token accuracy of the "next id" map


def test_one_shot_iterator_is_reused_over_epochs() -> None:
    net, train, _ = linear_setup()
    res = finetune(net, iter(train), epochs=2, progress=False)
    assert res.steps == 2 * len(train)


def test_bad_settings_raise_config_errors_naming_the_value() -> None:
    net, train, _ = linear_setup()
    with pytest.raises(ConfigError, match="patience=2 needs a validation"):
        finetune(net, train, patience=2)
    with pytest.raises(ConfigError, match="epochs=0"):
        finetune(net, train, epochs=0)
    with pytest.raises(ConfigError, match="lr=-1"):
        finetune(net, train, lr=-1)
    with pytest.raises(RegistryError, match="cosine"):
        finetune(net, train, lr_schedule="cosin")
    with pytest.raises(ConfigError, match="no batch"):
        finetune(net, [], progress=False)
    with pytest.raises(ConfigError, match="distill must be a Distillation"):
        finetune(net, train, distill=net)  # type: ignore[arg-type]


def test_diverging_loss_raises_a_recovery_error() -> None:
    net = nn.Linear(2, 2)
    data = [(torch.tensor([[float("inf"), 1.0]]), torch.tensor([0]))]
    with pytest.raises(RecoveryError, match="lower lr="):
        finetune(net, data, progress=False)
