"""What each rank runs in the distributed tests (importable by spawned processes)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import prunekit
from prunekit.importance import ActivationMean, LossContribution, Taylor

BATCHES = 4


def cnn() -> tuple[nn.Module, torch.Tensor, list[Any]]:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(8, 4),
    ).eval()  # fmt: skip
    g = torch.Generator().manual_seed(1)
    data = [(torch.randn(6, 3, 8, 8, generator=g), torch.randint(0, 4, (6,), generator=g))
            for _ in range(BATCHES)]  # fmt: skip
    return net, torch.randn(1, 3, 8, 8), data


class HeadsNet(nn.Module):
    """A transformer encoder layer (4 heads) over token embeddings, mean-pooled to 4 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(20, 16)
        self.enc = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True)
        self.head = nn.Linear(16, 4)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.enc(self.emb(ids)).mean(1))


def transformer() -> tuple[nn.Module, torch.Tensor, list[Any]]:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    data = [(torch.randint(0, 20, (6, 5), generator=g), torch.randint(0, 4, (6,), generator=g))
            for _ in range(BATCHES)]  # fmt: skip
    return HeadsNet().eval(), torch.randint(0, 20, (1, 5)), data


def llama() -> tuple[nn.Module, Any, list[Any]]:
    from tests.llm.tiny import make_tiny_llama

    g = torch.Generator().manual_seed(1)
    data = [torch.randint(0, 61, (3, 8), generator=g) for _ in range(BATCHES)]
    return make_tiny_llama(use_cache=False), {"input_ids": torch.randint(0, 61, (1, 8))}, data


MODELS = {"cnn": cnn, "transformer": transformer, "llama": llama}


def _loss(out: Any, batch: Any) -> torch.Tensor:
    if isinstance(batch, torch.Tensor):  # causal LM: next-token loss
        logits = out.logits if hasattr(out, "logits") else out
        return F.cross_entropy(logits[:, :-1].flatten(0, 1), batch[:, 1:].flatten())
    return F.cross_entropy(out, batch[1])


def _inputs(batch: Any) -> Any:
    return {"input_ids": batch} if isinstance(batch, torch.Tensor) else batch[0]


def criterion(name: str, data: list[Any]) -> Any:
    from prunekit.importance import Calibration

    if name == "loss":
        cal = Calibration(data, _loss, inputs=_inputs)
        return LossContribution(calibration=cal)
    if name in ("obs", "reconstruction"):  # set-aware: Grams all-reduced
        from prunekit.importance import OBS, Reconstruction

        set_cls = {"obs": OBS, "reconstruction": Reconstruction}[name]
        return set_cls(calibration=Calibration(data, None, inputs=_inputs))
    cls = {"taylor": Taylor, "activation": ActivationMean}[name]
    return cls(calibration=Calibration(data, _loss, inputs=_inputs))


def _stats(crit: Any) -> dict[str, torch.Tensor]:
    if isinstance(crit, LossContribution):
        out = {k: v.clone() for k, v in crit.loss_sums_.items()}
        out["base"] = torch.tensor(crit.base_sum_)
        return out
    if crit.stats_ is None:  # set-aware criteria: the plans are compared
        return {}
    return {k: v.clone() for k, v in crit.stats_.sums.items()}


def score_and_plan(rank: int, cases: list[tuple[str, str]]) -> dict[str, Any]:
    """For each (model, criterion): the reduced statistics and the plan's JSON."""
    out: dict[str, Any] = {}
    for model_name, crit_name in cases:
        net, example, data = MODELS[model_name]()
        crit = criterion(crit_name, data)
        res = prunekit.prune(net, example, ratio=0.5, importance=crit)
        out[f"{model_name}/{crit_name}"] = (_stats(crit), res.plan.to_json())
    return out


def uneven(rank: int) -> str:
    """One calibration batch for two ranks: rank 1 gets none and must still take part."""
    net, example, data = cnn()
    crit = criterion("taylor", data[:1])
    return prunekit.prune(net, example, ratio=0.5, importance=crit).plan.to_json()


def mismatch(rank: int) -> str:
    """Each rank's model has different weights: the plans differ and every rank must raise."""
    torch.manual_seed(rank)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    try:
        prunekit.prune(net, torch.randn(1, 4), ratio=0.5)
    except prunekit.errors.PlanError as exc:
        return str(exc)
    return "no error"


def _train_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))


def _train_data() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(2)
    return [(torch.randn(8, 8, generator=g), torch.randint(0, 3, (8,), generator=g))
            for _ in range(4)]  # fmt: skip


def train(rank: int, ddp: bool = True) -> dict[str, torch.Tensor]:
    """3 epochs of SGD; under DDP each rank trains on its half of every batch."""
    from prunekit.distributed import shard_rows
    from prunekit.recovery import finetune

    net, data = _train_net(), _train_data()
    model: nn.Module = nn.parallel.DistributedDataParallel(net) if ddp else net
    batches = list(shard_rows(data)) if ddp else data
    val = list(shard_rows(data[:2])) if ddp else data[:2]
    res = finetune(model, batches, epochs=3, lr=0.1, optimizer="sgd", momentum=0.0,
                   val_data=val, progress=False, restore_best=False)  # fmt: skip
    out = {k: v.detach().clone() for k, v in net.state_dict().items()}
    out["metric"] = torch.tensor([r.val_metric for r in res.history], dtype=torch.float64)
    return out


def fsdp(rank: int) -> dict[str, Any]:
    """FSDP2: gather the full weights, cut on them (Taylor, sharded calibration), shard the
    pruned model again and fine-tune it; the plan and the final full weights."""
    from torch.distributed.fsdp import fully_shard

    from prunekit.distributed import gather_full_weights, shard_rows

    sharded = _train_net()
    for layer in sharded:
        if isinstance(layer, nn.Linear):
            fully_shard(layer)
    fully_shard(sharded)
    plain = gather_full_weights(
        sharded, nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    )
    return _cut_and_train(plain, list(shard_rows(_train_data())), shard_again=True)


def _cut_and_train(net: nn.Module, batches: list[Any], *, shard_again: bool) -> dict[str, Any]:
    from prunekit.recovery import finetune

    crit = Taylor(data=_train_data(), loss_fn=lambda o, b: F.cross_entropy(o, b[1]))
    res = prunekit.prune(net, torch.randn(1, 8), ratio=0.5, importance=crit)
    model = res.model
    if shard_again:
        from torch.distributed.fsdp import fully_shard

        fully_shard(model)
    finetune(model, batches, epochs=2, lr=0.1, optimizer="sgd", momentum=0.0, progress=False)
    full = {}
    for k, v in model.state_dict().items():
        full[k] = v.full_tensor() if hasattr(v, "full_tensor") else v
        full[k] = full[k].detach().clone()
    return {"plan": res.plan.to_json(), "weights": full}


def fsdp_alone() -> dict[str, Any]:
    return _cut_and_train(_train_net(), _train_data(), shard_again=False)
