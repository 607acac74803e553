"""finetune works unchanged on a DistributedDataParallel model (single-process gloo group)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import torch
import torch.distributed as dist
from recovery_support import digits_batches
from torch import nn

from prunekit.recovery import Distillation, GroupLasso, NoiseInjection, finetune, recalibrate_bn


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def gloo_group() -> Iterator[None]:
    if not dist.is_available() or not dist.is_gloo_available() or dist.is_initialized():
        pytest.skip("torch.distributed with gloo is not available here")
    try:
        dist.init_process_group(
            "gloo", rank=0, world_size=1, init_method=f"tcp://127.0.0.1:{_free_port()}"
        )
    except (RuntimeError, ValueError) as exc:  # pragma: no cover - depends on the sandbox
        pytest.skip(f"cannot start a gloo process group: {exc}")
    try:
        yield
    finally:
        dist.destroy_process_group()


def make_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10))


def test_ddp_model_trains_distils_and_restores_its_best_state(gloo_group: None) -> None:
    data = [(x.flatten(1), y) for x, y in digits_batches(128)]
    teacher = make_net()
    model = nn.parallel.DistributedDataParallel(make_net())
    seen: list[dict[str, torch.Tensor]] = []
    scores = iter([0.1, 0.5, 0.9, 0.2, 0.3])

    def metric(m: nn.Module) -> float:
        seen.append({k: v.detach().clone() for k, v in m.state_dict().items()})
        return next(scores)

    kd = Distillation(teacher, alpha=0.5, features={"0": "0"})
    res = finetune(model, data, epochs=4, lr=0.05, metric=metric, device=None, distill=kd,
                   noise=NoiseInjection(0.01), regularizer=GroupLasso(model, torch.zeros(2, 64), 1e-4),
                   progress=False)  # fmt: skip
    assert res.best_epoch == 2 and res.restored_best
    assert all(k.startswith("module.") for k in seen[0])
    state = model.state_dict()
    assert all(torch.equal(state[k], seen[2][k]) for k in state)
    assert recalibrate_bn(model, data, samples=256) == 256


def test_ddp_and_plain_model_reach_the_same_weights(gloo_group: None) -> None:
    data = [(x.flatten(1), y) for x, y in digits_batches(128, limit=512)]
    plain, wrapped = make_net(), nn.parallel.DistributedDataParallel(make_net())
    for m in (plain, wrapped):
        finetune(m, data, epochs=1, lr=0.05, noise=NoiseInjection(0.01), progress=False)
    for a, b in zip(plain.parameters(), wrapped.module.parameters()):
        torch.testing.assert_close(a, b)
