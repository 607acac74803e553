"""select_units: local and global allocation, keep-at-least-one, round_to, bad scope."""

from __future__ import annotations

import pytest
import torch

from prunekit.allocation import SCOPES, select_units
from prunekit.errors import ConfigError
from prunekit.graph.dependency import Group, Member


def make_group(gid: int, n: int) -> Group:
    return Group(gid, [Member(f"layer{gid}.weight", 0, [[u] for u in range(n)])], exact=True)


def local(scores: list[float], ratio: float, round_to: int = 1) -> list[int]:
    g = make_group(0, len(scores))
    out = select_units(
        [g], {0: torch.tensor(scores)}, ratio=ratio, scope="local", round_to=round_to
    )
    return out[0]


# --------------------------------------------------------------------------- local


def test_scopes() -> None:
    assert set(SCOPES) == {"local", "global"}


@pytest.mark.parametrize(
    ("n", "ratio", "removed"),
    [(10, 0.5, 5), (10, 0.35, 3), (7, 0.5, 3), (8, 0.25, 2), (3, 0.3, 0), (16, 0.1, 1)],
)
def test_local_removes_floor_ratio_times_n(n: int, ratio: float, removed: int) -> None:
    scores = torch.rand(n, generator=torch.Generator().manual_seed(n)).tolist()
    assert len(local(scores, ratio)) == removed


def test_local_picks_lowest_scores_sorted() -> None:
    scores = [0.9, 0.1, 0.5, 0.05, 0.7, 0.3]
    # lowest three: 0.05 (3), 0.1 (1), 0.3 (5)
    assert local(scores, 0.5) == [1, 3, 5]
    assert local(scores, 0.34) == [1, 3]  # floor(2.04) = 2 -> units 3 and 1, sorted


def test_local_ratio_zero_removes_nothing() -> None:
    assert local([3.0, 1.0, 2.0], 0.0) == []


def test_local_keeps_one_unit_at_high_ratio() -> None:
    scores = [5.0, 4.0, 3.0, 9.0, 1.0, 2.0, 8.0, 7.0, 6.0, 0.5]
    removed = local(scores, 0.99)
    assert len(removed) == 9
    assert 3 not in removed  # the best unit (9.0) is the survivor
    assert local([1.0], 0.99) == []
    assert local([2.0, 1.0], 0.99) == [1]


@pytest.mark.parametrize(
    ("n", "ratio", "kept"),
    [(64, 0.5, 32), (64, 0.3, 48), (20, 0.5, 16), (10, 0.99, 8), (6, 0.5, 6), (64, 0.99, 8)],
)
def test_local_round_to_rounds_kept_width_up(n: int, ratio: float, kept: int) -> None:
    # 64*0.3 -> remove 19, keep 45 -> 48; 20*0.5 -> keep 10 -> 16; 10*0.99 -> keep 1 -> 8;
    # 6 units: keep 3 -> 8 > 6 -> all 6 kept; 64*0.99 -> keep 1 -> 8
    scores = torch.arange(n, 0, -1, dtype=torch.float32)  # unit i has score n - i
    removed = select_units([make_group(0, n)], {0: scores}, ratio=ratio, scope="local", round_to=8)[
        0
    ]
    assert n - len(removed) == kept
    assert kept % 8 == 0 or kept == n
    # the removed ones are the lowest-scored, i.e. the last indices
    assert removed == list(range(kept, n))


def test_local_groups_are_independent() -> None:
    groups = [make_group(0, 4), make_group(1, 10)]
    scores = {0: torch.tensor([4.0, 3.0, 2.0, 1.0]), 1: torch.arange(10.0) * 1000}
    out = select_units(groups, scores, ratio=0.5, scope="local")
    assert out == {0: [2, 3], 1: [0, 1, 2, 3, 4]}


def test_ties_are_broken_stably_by_index() -> None:
    assert local([1.0, 1.0, 1.0, 1.0], 0.5) == [0, 1]


def test_unknown_scope_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="regional"):
        select_units([make_group(0, 4)], {0: torch.ones(4)}, ratio=0.5, scope="regional")


# --------------------------------------------------------------------------- global


def test_global_removes_ratio_of_all_units_lowest_normalised_first() -> None:
    groups = [make_group(0, 4), make_group(1, 4)]
    # normalised by their means (2.5 and 25): group 0 -> .4 .8 1.2 1.6, group 1 -> .04 .2 1.8 1.96
    scores = {0: torch.tensor([1.0, 2.0, 3.0, 4.0]), 1: torch.tensor([1.0, 5.0, 45.0, 49.0])}
    out = select_units(groups, scores, ratio=0.5, scope="global")
    # 4 lowest of all 8: .04 (g1 u0), .2 (g1 u1), .4 (g0 u0), .8 (g0 u1)
    assert out == {0: [0, 1], 1: [0, 1]}
    out = select_units(groups, scores, ratio=0.25, scope="global")
    assert out == {0: [], 1: [0, 1]}


def test_global_group_with_relatively_tiny_scores_loses_more() -> None:
    groups = [make_group(0, 8), make_group(1, 8)]
    # group 0 has a few strong units and many near-zero ones; group 1 is even
    g0 = torch.tensor([1e-4, 2e-4, 3e-4, 4e-4, 5e-4, 6e-4, 10.0, 11.0])
    g1 = torch.tensor([0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2, 1.25])
    out = select_units(groups, {0: g0, 1: g1}, ratio=0.5, scope="global")
    assert len(out[0]) > len(out[1])
    assert out[0] == [0, 1, 2, 3, 4, 5]
    assert len(out[0]) + len(out[1]) == 8


def test_global_is_invariant_to_a_groups_scale() -> None:
    groups = [make_group(0, 6), make_group(1, 6)]
    a = torch.tensor([0.1, 0.5, 0.3, 2.0, 1.0, 0.7])
    b = torch.tensor([3.0, 0.2, 1.0, 0.9, 5.0, 0.4])
    ref = select_units(groups, {0: a, 1: b}, ratio=0.5, scope="global")
    scaled = select_units(groups, {0: a * 1e-6, 1: b * 1e3}, ratio=0.5, scope="global")
    assert ref == scaled
    assert sum(len(v) for v in ref.values()) == 6


def test_global_keeps_at_least_one_unit_per_group() -> None:
    groups = [make_group(0, 4), make_group(1, 4)]
    g0 = torch.tensor([1e-6, 2e-6, 3e-6, 100.0])
    g1 = torch.tensor([1e-6, 2e-6, 3e-6, 100.0])
    out = select_units(groups, {0: g0, 1: g1}, ratio=0.99, scope="global")
    assert out == {0: [0, 1, 2], 1: [0, 1, 2]}
    # a single-unit group is never emptied
    out = select_units(
        [make_group(0, 1), make_group(1, 5)],
        {0: torch.tensor([1e-9]), 1: torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])},
        ratio=0.9,
        scope="global",
    )
    assert out[0] == []
    assert len(out[1]) == 4


def test_global_ratio_zero_and_round_to() -> None:
    groups = [make_group(0, 16), make_group(1, 16)]
    scores = {0: torch.arange(1.0, 17.0), 1: torch.arange(1.0, 17.0) ** 3}
    assert select_units(groups, scores, ratio=0.0, scope="global") == {0: [], 1: []}
    out = select_units(groups, scores, ratio=0.5, scope="global", round_to=8)
    for gid, removed in out.items():
        kept = 16 - len(removed)
        assert kept % 8 == 0, (gid, kept)
        assert kept >= 8


def test_global_ties_do_not_overshoot_the_ratio() -> None:
    groups = [make_group(0, 4), make_group(1, 4)]
    scores = {0: torch.full((4,), 5.0), 1: torch.full((4,), 2.0)}
    out = select_units(groups, scores, ratio=0.25, scope="global")
    assert sum(len(v) for v in out.values()) == 2


def test_local_floor_is_robust_to_float_rounding() -> None:
    assert len(local(torch.arange(100.0).tolist(), 0.29)) == 29
