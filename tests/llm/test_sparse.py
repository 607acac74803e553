"""Weight-level LLM sparsity (prunekit.llm.sparsify): Wanda / magnitude / SparseGPT masks against
hand computations, SparseGPT against a brute-force OBS in float64, N:M patterns, OWL, argument
errors; tiny random LLaMA only."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

from prunekit.errors import ConfigError, DataError
from prunekit.llm import (
    decoder_layers,
    outlier_ratio,
    owl_sparsities,
    sparsegpt_prune,
    sparsify,
)
from prunekit.llm.sparse import STAGES, _keep_mask
from prunekit.llm.sparse_config import SparseConfig
from prunekit.llm.sparsegpt import inverse_hessian_factor
from prunekit.surgery.llama_blocks import projections
from tests.llm.tiny import TINY_VOCAB, make_tiny_llama
from tests.untouched import Snapshot

METHODS = ("magnitude", "wanda", "sparsegpt")


def _ids(n: int = 8, length: int = 24) -> torch.Tensor:
    return torch.randint(0, TINY_VOCAB, (n, length), generator=torch.Generator().manual_seed(1))


def _cfg(method: str, nm: tuple[int, int] | None = None) -> SparseConfig:
    return SparseConfig(method, 0.5, nm, "x", "uniform", 0.08, 5.0, 0.01, 128, True)


class _Norms:
    """Stand-in for ChannelStats with a given ``||X_j||_2``."""

    def __init__(self, norm: torch.Tensor) -> None:
        self.norm = norm


# --- Wanda / magnitude masks: hand computations ------------------------------------------


def test_wanda_mask_equals_hand_computation_on_2x4() -> None:
    lin = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -2.0, 3.0, -4.0], [4.0, 3.0, -2.0, 1.0]]))
    norms = torch.tensor([4.0, 1.0, 1.0, 0.5], dtype=torch.float64)
    # scores |W| * ||X||: row 0 = [4, 2, 3, 2], row 1 = [16, 3, 2, 0.5]
    # per row, drop the 2 lowest (ties to the lower index): row 0 drops cols 1, 3; row 1 drops 2, 3
    keep = _keep_mask(_cfg("wanda"), lin, _Norms(norms), 0.5)  # type: ignore[arg-type]
    assert keep.int().tolist() == [[1, 0, 1, 0], [1, 1, 0, 0]]
    # magnitude compares the whole layer: |W| = [1,2,3,4 | 4,3,2,1]; the 4 lowest go
    mag = _keep_mask(_cfg("magnitude"), lin, None, 0.5)
    assert mag.int().tolist() == [[0, 0, 1, 1], [1, 1, 0, 0]]
    # 2:4 with Wanda scores: the same per-row result (one group of 4 per row)
    nm = _keep_mask(_cfg("wanda", (2, 4)), lin, _Norms(norms), 0.5)  # type: ignore[arg-type]
    assert (nm.sum(1) == 2).all() and nm[0, 0] and nm[0, 2] and nm[1, 0] and nm[1, 1]


# --- SparseGPT against brute-force OBS ---------------------------------------------------


def _obs_reference(
    w: torch.Tensor,
    x: torch.Tensor,
    sparsity: float,
    blocksize: int,
    damp: float,
    nm: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Textbook OBS in float64, without SparseGPT's Cholesky trick or lazy batching.

    Columns are eliminated left to right; at column q the inverse Hessian of the columns
    not yet eliminated, F = q.., is the explicit ``inv(H[F, F])``. A weight removed at q
    has error e and the later weights of its row move by ``-e / Hinv_qq * Hinv_q,F``
    (OBS). The mask: at the start of every block of ``blocksize`` columns (or of every
    group of M columns for N:M) the OBS saliencies ``w^2 / Hinv_jj`` of the current weights,
    with ``Hinv_jj = inv(H[j:, j:])[0, 0]`` the value column j will have when it is reached,
    pick the lowest ``sparsity`` of the block (or the M - N lowest of each row's group)."""
    w = w.clone().to(torch.float64)
    h = 2.0 / x.shape[0] * x.T.to(torch.float64) @ x.to(torch.float64)
    h += torch.eye(h.shape[0], dtype=h.dtype) * damp * h.diagonal().mean()
    cols = w.shape[1]
    d = torch.stack([torch.linalg.inv(h[j:, j:])[0, 0] for j in range(cols)])
    prune = torch.zeros_like(w, dtype=torch.bool)
    step = blocksize if nm is None else nm[1]
    for q in range(cols):
        if q % step == 0:
            end = min(q + step, cols)
            sal = w[:, q:end].square() / d[None, q:end]
            if nm is None:
                flat = sal.reshape(-1)
                block = torch.zeros(flat.numel(), dtype=torch.bool)
                block[torch.argsort(flat, stable=True)[: int(sparsity * flat.numel() + 1e-9)]] = (
                    True
                )
                prune[:, q:end] = block.reshape(sal.shape)
            else:
                low = torch.topk(sal, nm[1] - nm[0], dim=1, largest=False).indices
                prune[:, q:end].scatter_(1, low, True)
        hinv = torch.linalg.inv(h[q:, q:])
        err = torch.where(prune[:, q], w[:, q], torch.zeros_like(w[:, q]))
        w[:, q:] -= (err / hinv[0, 0])[:, None] * hinv[0][None, :]
        w[prune[:, q], q] = 0.0
    return w


def _recon(w_new: torch.Tensor, w: torch.Tensor, x: torch.Tensor) -> float:
    return float((x.double() @ (w_new.double() - w.double()).T).square().sum())


def _layer_problem(seed: int, rows: int = 8, cols: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """``(W, X)``: random weights, and inputs with unequal feature scales and correlations
    (as in LLM activations), float64."""
    gen = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    mix = torch.eye(cols, dtype=f64) + 0.3 * torch.randn(cols, cols, generator=gen, dtype=f64)
    scale = torch.rand(cols, generator=gen, dtype=f64) * 3 + 0.1
    x = (torch.randn(16 * cols, cols, generator=gen, dtype=f64) * scale) @ mix
    return torch.randn(rows, cols, generator=gen, dtype=f64), x


def test_sparsegpt_matches_brute_force_obs_and_beats_magnitude_and_wanda() -> None:
    w, x = _layer_problem(1)
    ours = sparsegpt_prune(w, x.T @ x, x.shape[0], sparsity=0.5, damp=0.01, blocksize=16)
    ref = _obs_reference(w, x, 0.5, 16, 0.01)
    assert torch.allclose(ours, ref, atol=1e-9, rtol=1e-9)
    assert int((ours == 0).sum()) == w.numel() // 2
    assert ours.dtype == w.dtype and not torch.equal(ours[ours != 0], w[ours != 0])  # refitted
    lin = nn.Linear(32, 8, bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(w)
    mag = w * _keep_mask(_cfg("magnitude"), lin, None, 0.5)
    norms = x.square().sum(0).sqrt()
    wanda = w * _keep_mask(_cfg("wanda"), lin, _Norms(norms), 0.5)  # type: ignore[arg-type]
    e_gpt, e_mag, e_wanda = (_recon(v, w, x) for v in (ours, mag, wanda))
    assert e_gpt < 0.8 * min(e_wanda, e_mag), (e_gpt, e_wanda, e_mag)


def test_sparsegpt_two_four_matches_brute_force_obs() -> None:
    w, x = _layer_problem(3, rows=5, cols=16)
    ours = sparsegpt_prune(w, x.T @ x, x.shape[0], nm=(2, 4), damp=0.01, blocksize=8)
    assert ((ours.reshape(5, 4, 4) != 0).sum(-1) == 2).all()
    assert torch.allclose(ours, _obs_reference(w, x, 0.5, 8, 0.01, nm=(2, 4)), atol=1e-9)


def test_sparsegpt_cholesky_failure_retries_with_more_damping() -> None:
    x = torch.ones(8, 4, dtype=torch.float64)  # rank 1: H singular without damping
    with pytest.warns(RuntimeWarning, match="retrying with damp"):
        u = inverse_hessian_factor(x.T @ x, 8, damp=0.0)
    assert torch.isfinite(u).all()
    with pytest.raises(DataError, match="no calibration tokens"):
        inverse_hessian_factor(x.T @ x, 0, damp=0.01)


# --- end to end on the tiny LLaMA ---------------------------------------------------------


def _projections(model: nn.Module) -> list[torch.Tensor]:
    return [p.weight for b in decoder_layers(model) for p in projections(b).values()]


@pytest.mark.parametrize("method", METHODS)
def test_two_four_pattern_holds_exactly(method: str) -> None:
    res = sparsify(make_tiny_llama(), _ids(), method=method, pattern="2:4", progress=False)
    for w in _projections(res.model):
        groups = (w.reshape(w.shape[0], -1, 4) != 0).sum(-1)
        assert int(groups.max()) <= 2, method
    assert res.sparsity == pytest.approx(0.5, abs=1e-3)
    assert res.pattern == "2:4" and set(res.layer_sparsity.values()) <= {0.5}


@pytest.mark.parametrize("method", METHODS)
def test_unstructured_sparsity_achieved_within_rounding(method: str) -> None:
    res = sparsify(make_tiny_llama(), _ids(), method=method, sparsity=0.6, progress=False)
    for name, s in res.layer_sparsity.items():
        in_features = dict(res.model.named_modules())[name].in_features
        assert abs(s - 0.6) <= 1.0 / in_features, (name, s)
    assert len(res.layer_sparsity) == 14
    assert method in res.summary() and "unstructured" in res.summary()
    masks = res.masks()
    assert all(m.dtype == torch.bool for m in masks.values()) and len(masks) == 14


def test_sparsify_keeps_model_plain_and_input_untouched(tmp_path: object) -> None:
    dense = make_tiny_llama()
    snap = Snapshot.take(dense)
    res = sparsify(dense, _ids(), method="sparsegpt", progress=False)
    snap.assert_unchanged(dense)
    assert res.model is not dense
    assert type(res.model) is type(dense)
    assert not any(hasattr(m, "parametrizations") for m in res.model.modules())
    out = res.model.generate(_ids(1, 5), max_new_tokens=3, do_sample=False)
    assert out.shape == (1, 8)


def test_sparsify_inplace_changes_the_model() -> None:
    model = make_tiny_llama()
    res = sparsify(model, _ids(), method="wanda", inplace=True, progress=False)
    assert res.model is model
    assert float((_projections(model)[0] == 0).float().mean()) == pytest.approx(0.5)


def test_sparsegpt_has_the_lowest_logit_error_on_the_tiny_model() -> None:
    """On the tiny model the logits' error against the dense model (on the calibration
    windows) is lowest for SparseGPT (random weights: Wanda and magnitude are close)."""
    dense = make_tiny_llama()
    ids = _ids(16, 32)
    errs = {}
    with torch.no_grad():
        logits = dense(ids).logits
        for method in METHODS:
            sparse = sparsify(dense, ids, method=method, progress=False).model
            errs[method] = float((sparse(ids).logits - logits).square().mean())
    assert errs["sparsegpt"] < 0.8 * min(errs["wanda"], errs["magnitude"]), errs


def test_sequential_and_one_pass_differ_only_after_the_first_stage() -> None:
    """q/k/v see the same inputs either way; o_proj is fitted to different inputs."""
    dense = make_tiny_llama()
    a = sparsify(dense, _ids(), method="sparsegpt", sequential=True, progress=False).model
    b = sparsify(dense, _ids(), method="sparsegpt", sequential=False, progress=False).model
    pa, pb = projections(decoder_layers(a)[0]), projections(decoder_layers(b)[0])
    for name in STAGES[0]:
        assert torch.equal(pa[name].weight, pb[name].weight), name
    assert not torch.equal(pa["o_proj"].weight, pb["o_proj"].weight)


# --- OWL -----------------------------------------------------------------------------------


def test_owl_outlier_ratio_and_sparsities_by_hand() -> None:
    # block A: scores [1]*9 + [46]: mean 5.5, threshold 5 -> 27.5; one outlier of 10
    a = [torch.ones(3, 3), torch.tensor([46.0])]
    # block B: all equal -> no outlier
    b = [torch.ones(2, 5)]
    # block C: [1]*8 + [30, 30]: mean 6.8, 5x = 34 -> none above; at threshold 4 (27.2): two
    c = [torch.tensor([1.0] * 8 + [30.0, 30.0])]
    assert outlier_ratio(a, 5.0) == pytest.approx(0.1)
    assert outlier_ratio(b, 5.0) == 0.0
    assert outlier_ratio(c, 5.0) == 0.0 and outlier_ratio(c, 4.0) == pytest.approx(0.2)
    # ratios [0.1, 0.0, 0.2] -> mapped to [0, 2*lam] = [0.08, 0, 0.16], mean 0.08
    s = owl_sparsities([0.1, 0.0, 0.2], 0.5, 0.08)
    assert s == pytest.approx([0.5, 0.58, 0.42])
    assert sum(s) / 3 == pytest.approx(0.5)
    assert owl_sparsities([0.3, 0.3], 0.5, 0.08) == [0.5, 0.5]
    with pytest.raises(ConfigError, match="owl_lambda"):
        owl_sparsities([0.0, 1.0], 0.9, 0.2)


def test_owl_allocation_end_to_end() -> None:
    res = sparsify(make_tiny_llama(), _ids(), method="wanda", allocation="owl", progress=False)
    assert len(res.outlier_ratios) == 2 and len(res.block_sparsity) == 2
    assert sum(res.block_sparsity) / 2 == pytest.approx(0.5)
    assert max(res.block_sparsity) - min(res.block_sparsity) == pytest.approx(0.16)
    # the block with more outliers is pruned less
    hi = max(range(2), key=lambda i: res.outlier_ratios[i])
    assert res.block_sparsity[hi] < 0.5
    for i, block in enumerate(decoder_layers(res.model)):
        for lin in projections(block).values():
            got = float((lin.weight == 0).float().mean())
            assert abs(got - res.block_sparsity[i]) <= 1.0 / lin.in_features
    assert "owl" in res.summary()


# --- argument errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "obs"}, r"method='obs'.*magnitude.*wanda.*sparsegpt"),
        ({"pattern": "2-4"}, r"pattern='2-4'.*'unstructured'.*'N:M'"),
        ({"pattern": "4:2"}, r"pattern='4:2'.*0 < N < M"),
        ({"allocation": "global"}, r"allocation='global'.*uniform.*owl"),
        ({"pattern": "2:4", "allocation": "owl"}, r"allocation='owl'.*'2:4'"),
        ({"pattern": "2:4", "sparsity": 0.7}, r"sparsity=0.7 contradicts pattern='2:4'"),
        ({"sparsity": 1.0}, r"sparsity=1.0"),
        ({"sparsity": -0.1}, r"sparsity=-0.1"),
        ({"blocksize": 0}, r"blocksize=0"),
        ({"damp": -1.0}, r"damp=-1.0"),
        ({"owl_threshold": 0.0}, r"owl_threshold=0.0"),
    ],
)
def test_bad_arguments_raise_config_error(kwargs: dict[str, object], match: str) -> None:
    model = make_tiny_llama()
    snap = Snapshot.take(model)
    with pytest.raises(ConfigError, match=match):
        sparsify(model, _ids(), progress=False, **kwargs)  # type: ignore[arg-type]
    snap.assert_unchanged(model)


def test_regression_nm_pattern_with_non_numeric_sparsity_is_config_error() -> None:
    """The N:M consistency check once ran float(sparsity) before validating it: a string
    raised a bare ValueError naming nothing."""
    with pytest.raises(ConfigError, match=r"sparsity='half' must be a number"):
        sparsify(make_tiny_llama(), _ids(), sparsity="half", pattern="2:4", progress=False)  # type: ignore[arg-type]


def test_calibration_required_except_for_uniform_magnitude() -> None:
    with pytest.raises(ConfigError, match="needs calibration"):
        sparsify(make_tiny_llama(), None, method="wanda", progress=False)
    with pytest.raises(ConfigError, match="needs calibration"):
        sparsify(make_tiny_llama(), None, method="magnitude", allocation="owl", progress=False)
    res = sparsify(make_tiny_llama(), None, method="magnitude", progress=False)
    assert res.sparsity == pytest.approx(0.5)


def test_nm_needs_input_features_divisible_by_m() -> None:
    with pytest.raises(ConfigError, match=r"32 input features, not a multiple of M=5"):
        sparsify(make_tiny_llama(), _ids(), pattern="2:5", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = sparsify(make_tiny_llama(), _ids(), method="wanda", pattern="1:4", progress=False)
    assert math.isclose(res.sparsity, 0.75)


def test_float32_batch_gram_matches_float64_gram() -> None:
    from prunekit.llm.activations import GramStats
    from prunekit.llm.sparse import _Gram

    x = torch.randn(3, 50, 7, generator=torch.Generator().manual_seed(0)) * 30
    exact, fast = GramStats(7), _Gram(7)
    exact.add(x)
    fast.add(x)
    assert fast.count == exact.count == 150 and fast.gram.dtype == torch.float64
    assert torch.allclose(fast.gram, exact.gram, rtol=1e-5)
    with pytest.raises(DataError, match="inputs have 3 features, the statistics 7"):
        _Gram(7).add(torch.zeros(2, 3))
