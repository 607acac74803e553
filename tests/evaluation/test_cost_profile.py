"""Bytes on disk, peak memory, latency records, the cost profile and before/after ratios."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load as safetensors_load
from safetensors.torch import save, save_model
from torch import nn

from prunekit.errors import ConfigError
from prunekit.evaluation import (
    CostProfile,
    LatencyReport,
    MemoryReport,
    compare_cost,
    count_params,
    fp32_bytes,
    measure_latency,
    measure_peak_memory,
    profile_cost,
    state_dict_bytes,
)
from prunekit.evaluation.cost import unique_state


def _net() -> nn.Sequential:
    return nn.Sequential(nn.Linear(6, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Linear(12, 3))


def test_state_dict_bytes_equal_the_safetensors_file(tmp_path: Path) -> None:
    model = _net()
    path = tmp_path / "model.safetensors"
    save_model(model, str(path))
    assert state_dict_bytes(model) == path.stat().st_size


def test_serialised_state_round_trips() -> None:
    model = _net()
    loaded = safetensors_load(save(unique_state(model)))
    assert loaded.keys() == model.state_dict().keys()
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())


class _Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 8)
        self.head = nn.Linear(8, 50, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.embed(tokens))
        return out


def test_tied_weights_are_stored_once() -> None:
    model = _Tied()
    assert list(unique_state(model)) == ["embed.weight"]
    assert fp32_bytes(model) == 50 * 8 * 4
    only_embedding = save({"embed.weight": model.embed.weight.detach()})
    assert state_dict_bytes(model) == len(only_embedding)


def test_fp32_bytes_by_hand() -> None:
    model = _net()
    # floats: 6*12+12, BN weight/bias/mean/var 4*12, 12*3+3 ; int64 num_batches_tracked: 8 bytes
    floats = 6 * 12 + 12 + 4 * 12 + 12 * 3 + 3
    assert fp32_bytes(model) == floats * 4 + 8
    assert fp32_bytes(model.half()) == floats * 4 + 8
    assert state_dict_bytes(model) < state_dict_bytes(_net())  # half is stored at 2 bytes


def test_peak_memory_by_hand() -> None:
    model = nn.Sequential(nn.Linear(100, 200), nn.ReLU())
    # the Linear output and the ReLU output are alive together: 2 x batch x 200 float32
    assert measure_peak_memory(model, torch.zeros(8, 100)).peak_bytes == 2 * 8 * 200 * 4
    report = measure_peak_memory(model, torch.zeros(1, 100), batch_size=16)
    assert report == MemoryReport(16, 2 * 16 * 200 * 4, "cpu", report.method)
    inplace = nn.Sequential(nn.Linear(100, 200), nn.ReLU(inplace=True))
    assert measure_peak_memory(inplace, torch.zeros(8, 100)).peak_bytes == 8 * 200 * 4


def test_peak_memory_sees_freed_temporaries() -> None:
    # 4 linears in a chain: at most two activations are alive at once (input of a layer is
    # freed once the next one consumed it), plus the kept output
    model = nn.Sequential(*[nn.Linear(64, 64) for _ in range(4)])
    peak = measure_peak_memory(model, torch.zeros(10, 64)).peak_bytes
    assert peak == 2 * 10 * 64 * 4


def test_latency_report_keys_and_restored_threads() -> None:
    threads = torch.get_num_threads()
    model = nn.Linear(16, 4).train()
    r = measure_latency(model, torch.zeros(3, 16), batch_size=5, warmup=1, runs=4, threads=1)
    assert torch.get_num_threads() == threads and model.training
    assert (r.batch_size, r.runs, r.warmup, r.threads, r.device) == (5, 4, 1, 1, "cpu")
    for value in (r.median_ms, r.p90_ms, r.mean_ms, r.min_ms, r.max_ms, r.throughput):
        assert value > 0
    assert r.min_ms <= r.median_ms <= r.p90_ms <= r.max_ms and r.std_ms >= 0
    assert r.throughput == pytest.approx(5 / (r.median_ms / 1e3))
    assert set(r.to_dict()) == {
        "batch_size", "runs", "warmup", "threads", "device", "median_ms", "p90_ms",
        "mean_ms", "std_ms", "min_ms", "max_ms", "throughput", "form", "q1_ms", "q3_ms",
    }  # fmt: skip
    with pytest.raises(ConfigError, match="runs=0"):
        measure_latency(model, torch.zeros(1, 16), runs=0)
    with pytest.raises(ConfigError, match="threads=0"):
        measure_latency(model, torch.zeros(1, 16), threads=0)


def test_latency_takes_tuple_and_dict_inputs() -> None:
    class TwoInputs(nn.Module):
        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return x + y

    r = measure_latency(TwoInputs(), (torch.zeros(2, 3), torch.ones(2, 3)), batch_size=7, runs=2)
    assert r.batch_size == 7
    r = measure_latency(TwoInputs(), {"x": torch.zeros(1, 3), "y": torch.ones(1, 3)}, runs=2)
    assert r.batch_size == 1


def test_profile_cost_per_sample_macs_and_lists() -> None:
    model = _net()
    p = profile_cost(model, torch.randn(5, 6), batch_sizes=(1, 4, 4), warmup=1, runs=2)
    assert p.params == count_params(model)
    assert p.macs == 6 * 12 + 12 * 3  # per sample, although the example batch holds 5
    assert [m.batch_size for m in p.memory] == [1, 4] and [r.batch_size for r in p.latency] == [
        1,
        4,
    ]
    assert p.latency_at(4) is p.latency[1] and p.memory_at(2) is None
    restored = CostProfile.from_dict(json.loads(json.dumps(p.to_dict())))
    assert restored == p
    with pytest.raises(ConfigError, match="batch_sizes"):
        profile_cost(model, torch.randn(1, 6), batch_sizes=())


def _latency(batch: int, median: float, p90: float) -> LatencyReport:
    return LatencyReport(
        batch, 10, 2, 1, "cpu", median, p90, median, 0.1, median, p90, batch / median * 1e3
    )


def test_compare_cost_ratios_by_hand() -> None:
    before = CostProfile(
        params=1000, macs=8000, state_dict_bytes=4400, fp32_bytes=4000,
        memory=[MemoryReport(1, 2048, "cpu", "m"), MemoryReport(64, 65536, "cpu", "m")],
        latency=[_latency(1, 2.0, 3.0), _latency(64, 40.0, 50.0)],
    )  # fmt: skip
    after = CostProfile(
        params=250, macs=2000, state_dict_bytes=1100, fp32_bytes=1000,
        memory=[MemoryReport(1, 1024, "cpu", "m")],
        latency=[_latency(1, 1.0, 2.0), _latency(64, 10.0, 25.0)],
    )  # fmt: skip
    c = compare_cost(before, after)
    assert (c.params, c.macs, c.state_dict_bytes, c.fp32_bytes) == (4.0, 4.0, 4.0, 4.0)
    assert c.memory == {1: 2.0}  # batch 64 memory was not measured after
    assert c.speedup == {1: 2.0, 64: 4.0}
    assert c.p90_speedup == {1: 1.5, 64: 2.0}
    assert c.throughput_gain == {1: pytest.approx(2.0), 64: pytest.approx(4.0)}
    assert json.loads(json.dumps(c.to_dict()))["speedup"] == {"1": 2.0, "64": 4.0}
    zero = CostProfile(params=0, macs=0, state_dict_bytes=1, fp32_bytes=0)
    assert compare_cost(before, zero).params is None  # undefined, not infinite
