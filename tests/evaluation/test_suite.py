"""evaluate() end to end on the digits, compare() and the prediction collector."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import prunekit
from prunekit.data import load_digits
from prunekit.errors import ConfigError, DataError
from prunekit.evaluation import (
    EvaluationReport,
    accuracy,
    agreement,
    collect_predictions,
    compare,
    count_macs,
    count_params,
    evaluate,
    format_table,
    metric_spreads,
    regression_quality,
)

FAST = {"warmup": 1, "runs": 2, "batch_sizes": (1, 8)}


@pytest.fixture(scope="module")
def digits() -> tuple[nn.Module, nn.Module, TensorDataset]:
    """A small MLP trained for a few full-batch steps, and its 50%-pruned copy."""
    torch.manual_seed(0)
    train, val = load_digits(seed=0)
    x, y = train.tensors
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(60):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    pruned = prunekit.prune(model, x[:1], ratio=0.5).model
    return model, pruned, val


def test_evaluate_classification_end_to_end(
    digits: tuple[nn.Module, nn.Module, TensorDataset],
) -> None:
    model, _, val = digits
    report = evaluate(model, DataLoader(val, batch_size=64), **FAST)  # type: ignore[arg-type]
    x, y = val.tensors
    with torch.no_grad():
        logits = model(x)
    q = report.quality
    assert report.task == "classification" and report.num_samples == len(val) == len(y)
    assert q.accuracy == pytest.approx(accuracy(logits, y)) and q.accuracy > 0.8
    assert sum(map(sum, q.confusion_matrix)) == len(y)
    assert q.per_class.support == torch.bincount(y, minlength=10).tolist()
    assert q.loss == pytest.approx(nn.functional.cross_entropy(logits, y).item(), rel=1e-5)
    assert set(q.top_k) == {1, 5} and q.top_k[5] >= q.accuracy
    assert report.stability is None
    cost = report.cost
    assert cost is not None and cost.params == count_params(model) == 64 * 32 + 32 + 32 * 10 + 10
    assert cost.macs == count_macs(model, x[:1]) == 64 * 32 + 32 * 10
    assert [r.batch_size for r in cost.latency] == [1, 8] and all(
        r.median_ms > 0 for r in cost.latency
    )
    assert [m.batch_size for m in cost.memory] == [1, 8] and cost.memory[1].peak_bytes > 0
    text = json.dumps(report.to_dict())
    assert EvaluationReport.from_dict(json.loads(text)) == report


def test_stability_and_compare_against_the_original(
    digits: tuple[nn.Module, nn.Module, TensorDataset],
) -> None:
    model, pruned, val = digits
    loader = DataLoader(val, batch_size=50)
    before = evaluate(model, loader, **FAST)  # type: ignore[arg-type]
    after = evaluate(pruned, loader, reference=model, **FAST)  # type: ignore[arg-type]
    x, y = val.tensors
    with torch.no_grad():
        ref_logits, logits = model(x), pruned(x)
    s = after.stability
    assert s is not None and s.flips is not None
    assert s.agreement == pytest.approx(agreement(logits, ref_logits))
    assert s.reference_accuracy == pytest.approx(before.quality.accuracy)
    assert s.accuracy - s.reference_accuracy == pytest.approx(
        (len(s.flips.newly_right) - len(s.flips.newly_wrong)) / len(val)
    )
    for flip in s.flips.newly_wrong:
        assert flip.pred != flip.target == flip.reference_pred == int(y[flip.index])

    c = compare(before, after)
    assert c.accuracy_drop_points == pytest.approx(
        (before.quality.accuracy - after.quality.accuracy) * 100
    )
    assert c.row("accuracy").change == pytest.approx(-c.accuracy_drop_points)
    assert c.params_reduction == pytest.approx(before.cost.params / after.cost.params)
    assert c.macs_reduction == pytest.approx(before.cost.macs / after.cost.macs)
    assert c.macs_reduction == pytest.approx((64 * 32 + 32 * 10) / (64 * 16 + 16 * 10))
    assert set(c.speedup) == {1, 8}
    b8, a8 = before.cost.latency_at(8), after.cost.latency_at(8)
    assert c.speedup[8] == pytest.approx(b8.median_ms / a8.median_ms)
    assert c.agreement == s.agreement and c.newly_wrong == len(s.flips.newly_wrong)
    json.dumps(c.to_dict())
    table = format_table(c)
    assert "accuracy" in table and "MACs / sample" in table and "latency median @8" in table


def test_summary_feeds_metric_spreads(digits: tuple[nn.Module, nn.Module, TensorDataset]) -> None:
    model, pruned, val = digits
    reports = [
        evaluate(m, val, reference=model, latency=False, batch_sizes=(2,)) for m in (model, pruned)
    ]
    summary = reports[1].summary()
    assert summary["accuracy"] == reports[1].quality.accuracy
    assert summary["top_5_accuracy"] == reports[1].quality.top_k[5]
    assert summary["agreement"] == reports[1].stability.agreement
    assert summary["macs"] == reports[1].cost.macs and "peak_bytes@2" in summary
    assert "num_samples" not in summary and "latency_ms@2" not in summary
    spreads = metric_spreads([r.summary() for r in reports])
    accs = [r.quality.accuracy for r in reports]
    assert spreads["accuracy"].mean == pytest.approx(sum(accs) / 2)
    assert spreads["accuracy"].std == pytest.approx(abs(accs[0] - accs[1]) / 2**0.5)


def test_reference_pairs_outputs_under_shuffling(
    digits: tuple[nn.Module, nn.Module, TensorDataset],
) -> None:
    model, pruned, val = digits
    ordered = evaluate(pruned, val, reference=model, cost=False)
    shuffled = evaluate(
        pruned, DataLoader(val, batch_size=32, shuffle=True), reference=model, cost=False
    )
    assert shuffled.stability.agreement == pytest.approx(ordered.stability.agreement)
    assert shuffled.quality.accuracy == pytest.approx(ordered.quality.accuracy)
    assert shuffled.cost is None


def test_self_reference_agrees_fully(digits: tuple[nn.Module, nn.Module, TensorDataset]) -> None:
    model, _, val = digits
    report = evaluate(model, val, reference=model, cost=False, max_batches=1)
    assert report.num_samples == 256  # one default Dataset batch
    assert report.stability.agreement == 1.0
    assert report.stability.flips.newly_wrong == report.stability.flips.newly_right == []


def test_regression_and_embedding_tasks() -> None:
    torch.manual_seed(0)
    x = torch.randn(40, 3)
    model = nn.Linear(3, 1)
    target = (x @ torch.tensor([[1.0], [-2.0], [0.5]])).squeeze(1)
    report = evaluate(
        model, TensorDataset(x, target), task="regression", latency=False, memory=False
    )
    with torch.no_grad():
        expected = regression_quality(model(x), target)
    assert report.quality == expected
    emb = evaluate(model, TensorDataset(x), task="embedding", reference=model, cost=False)
    assert emb.quality.mean == pytest.approx(1.0) and len(emb.quality.per_sample) == 40
    assert EvaluationReport.from_dict(json.loads(json.dumps(emb.to_dict()))) == emb
    same = compare(emb, emb)
    assert same.row("cosine mean").change == 0.0 and same.cost is None
    with pytest.raises(ConfigError, match="no metric 'accuracy'"):
        same.row("accuracy")


def test_task_and_data_errors() -> None:
    data = TensorDataset(torch.randn(4, 3))
    with pytest.raises(ConfigError, match="'segmentation' is not one of"):
        evaluate(nn.Linear(3, 2), data, task="segmentation")
    with pytest.raises(ConfigError, match="reference"):
        evaluate(nn.Linear(3, 2), data, task="embedding")
    with pytest.raises(DataError, match="needs targets"):
        evaluate(nn.Linear(3, 2), data, cost=False)
    with pytest.raises(DataError, match="empty"):
        evaluate(nn.Linear(3, 2), [], cost=False)
    with pytest.raises(ConfigError, match="cannot compare"):
        r = evaluate(nn.Linear(3, 1), TensorDataset(torch.randn(4, 3), torch.randn(4)),
                     task="regression", cost=False)  # fmt: skip
        compare(
            r,
            evaluate(
                nn.Linear(3, 3), data, task="embedding", reference=nn.Linear(3, 3), cost=False
            ),
        )


class _DictModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.dropout = nn.Dropout(0.9)

    def forward(self, input_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.dropout(self.fc(input_ids))}


def test_collect_predictions_dict_batches_and_modes() -> None:
    model = _DictModel().train()
    batches = [
        {"input_ids": torch.randn(3, 4), "labels": torch.tensor([0, 1, 2])},
        {"input_ids": torch.randn(2, 4), "labels": torch.tensor([2, 2])},
    ]
    p = collect_predictions(model, batches)
    assert p.outputs.shape == (5, 3) and p.targets.tolist() == [0, 1, 2, 2, 2]
    assert model.training  # flags restored; eval mode inside (dropout off: deterministic)
    again = collect_predictions(model, batches)
    assert torch.equal(p.outputs, again.outputs)
    assert len(collect_predictions(model, batches, max_batches=1)) == 3
    with pytest.raises(DataError, match="carry no targets"):
        collect_predictions(model, [batches[0], {"input_ids": torch.randn(1, 4)}])
    with pytest.raises(DataError, match="not understood"):
        collect_predictions(model, [42])
