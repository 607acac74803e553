"""2 gloo processes vs 1 on the same data: the same reduced statistics and byte-identical
plans; uneven shards do not deadlock; a plan mismatch raises on every rank (issue #21)."""

from __future__ import annotations

import torch

import prunekit
from tests.distributed.launch import run_ranks
from tests.distributed.workers import mismatch, score_and_plan, uneven

CASES = [
    (model, crit)
    for model in ("cnn", "transformer", "llama")
    for crit in ("taylor", "activation", "loss")
] + [("cnn", "reconstruction"), ("transformer", "obs")]


def test_two_ranks_score_and_plan_like_one_process() -> None:
    alone = score_and_plan(0, CASES)
    ranks = run_ranks(score_and_plan, args=(CASES,), timeout=240)
    for key, (stats, plan) in alone.items():
        for r, result in enumerate(ranks):
            r_stats, r_plan = result[key]
            assert r_plan == plan, f"{key}: rank {r}'s plan differs from one process"
            assert sorted(r_stats) == sorted(stats), key
            for name, value in stats.items():
                torch.testing.assert_close(
                    r_stats[name], value, rtol=1e-9, atol=1e-9, msg=f"{key}: {name} on rank {r}"
                )


def test_regression_rank_without_calibration_batch_does_not_deadlock() -> None:
    plans = run_ranks(uneven, timeout=90)
    assert plans[0] == plans[1] == uneven(0)


def test_regression_plan_mismatch_raises_on_every_rank() -> None:
    messages = run_ranks(mismatch, timeout=90)
    for r, msg in enumerate(messages):
        assert "pruning plan differs between rank 0 and rank 1" in msg, (r, msg)
        assert f"this is rank {r}" in msg


def test_alone_the_distributed_helpers_are_one_process_no_ops() -> None:
    d = prunekit.distributed
    assert (d.rank(), d.world_size(), d.is_main(), d.active()) == (0, 1, True, False)
    assert list(d.shard(range(3))) == [0, 1, 2]
    assert d.all_reduce_scalars([1.5]) == [1.5]
    d.check_same("plan", [("g", [1, 2])])  # nothing to compare against: no error


def test_ddp_recovery_matches_one_process_on_the_same_global_batches() -> None:
    """Tolerance: 1e-5 absolute on the weights after 12 SGD steps (float32 gradient sums in
    another order); the validation metric is the mean over the ranks' equal halves."""
    from tests.distributed.workers import train

    alone = train(0, ddp=False)
    ranks = run_ranks(train, timeout=120)
    for r, weights in enumerate(ranks):
        for name, value in alone.items():
            torch.testing.assert_close(
                weights[name], value, atol=1e-5, rtol=1e-5, msg=f"{name} on rank {r}"
            )
    torch.testing.assert_close(ranks[0]["metric"], ranks[1]["metric"])


def test_fsdp2_cut_on_gathered_weights_then_sharded_recovery_matches_one_process() -> None:
    """FSDP2 path: the full weights gathered, Taylor on sharded batches, the plan checked,
    the pruned model sharded again and fine-tuned on each rank's half of every batch;
    tolerance 1e-5 against one process on whole batches."""
    from tests.distributed.workers import fsdp, fsdp_alone

    alone = fsdp_alone()
    for r, result in enumerate(run_ranks(fsdp, timeout=150)):
        assert result["plan"] == alone["plan"], f"rank {r}"
        for name, value in alone["weights"].items():
            torch.testing.assert_close(
                result["weights"][name], value, atol=1e-5, rtol=1e-5, msg=f"{name} on rank {r}"
            )
