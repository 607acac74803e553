"""The calibration pass: forward/backward over a user's batches, accumulating raw sums."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from .. import distributed
from .._modelio import call_model, default_inputs, flatten_tensors, to_device
from ..checks import non_finite
from ..errors import ConfigError, NonFiniteError
from ..graph.dependency import DependencyGraph
from ..surgery import get_handler
from .health import count_samples
from .stats import ACT_STATS, GRAD_STATS, CalibrationStats

__all__ = ["Calibration", "default_inputs", "input_dim", "to_device"]

LossFn = Callable[[Any, Any], torch.Tensor]


def input_dim(module: nn.Module, weight: torch.Tensor, tensor: str = "weight") -> int | None:
    """The dim of ``module.<tensor>`` that indexes its input features (``None`` if unknown)."""
    return get_handler(module).input_dim(module, tensor, weight.dim())


def input_weight(module: nn.Module) -> str | None:
    """The name of ``module``'s own weight that reads the module's first input: the first
    parameter whose handler role is ``"weight"``, with 2+ dims and a known input dim
    (``weight`` for Linear/Conv, ``in_proj_weight`` for ``nn.MultiheadAttention``);
    ``None`` if there is none. Activation statistics of ``module`` are taken for it."""
    for name, p in module._parameters.items():
        if p is None or p.dim() < 2 or get_handler(module).role(module, name) != "weight":
            continue
        if input_dim(module, p, name) is not None:
            return name
    return None


class Calibration:
    """Run a model over calibration batches and accumulate :class:`CalibrationStats`.

    Each batch: ``out = model(inputs(batch))``, ``loss = loss_fn(out, batch)`` (any scalar
    loss: classification, regression, a multi-task sum, distillation), then ``backward``.
    Gradient stats are per batch gradient (with batch size 1, ``grad_sq`` is the empirical
    Fisher diagonal). Activation stats are taken on the *inputs* of every module that owns a
    weight member, i.e. after the nonlinearity: one value per input feature (last dim for 2-D
    weights, dim 1 for conv weights).

    Args:
        data: a DataLoader or any iterable of batches (materialised once, then re-used).
        loss_fn: ``loss_fn(model_output, batch) -> scalar tensor``.
        batches: use at most this many batches (``None``: all).
        inputs: ``inputs(batch) -> model inputs`` (tensor, tuple of args, or dict of kwargs);
            default: ``batch[0]`` for tuples/lists, the batch itself otherwise.
        stats: the stats to collect (see ``GRAD_STATS`` and ``ACT_STATS``); criteria request
            theirs with :meth:`request`.
        train_mode: run the model in train mode (default eval: no dropout, BN running stats).

    Example:
        >>> import torch
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
        >>> data = [(torch.randn(8, 3), torch.randint(0, 2, (8,))) for _ in range(2)]
        >>> cal = Calibration(data, lambda out, b: torch.nn.functional.cross_entropy(out, b[1]),
        ...                   stats=["grad", "act_sq"])
        >>> st = cal.collect(net)
        >>> st.batches, tuple(st.mean("grad", "0.weight").shape), tuple(st.mean("act_sq", "2").shape)
        (2, (4, 3), (4,))
    """

    def __init__(
        self,
        data: Iterable[Any],
        loss_fn: LossFn | None = None,
        batches: int | None = None,
        *,
        inputs: Callable[[Any], Any] | None = None,
        stats: Iterable[str] = (),
        train_mode: bool = False,
    ) -> None:
        if loss_fn is not None and not callable(loss_fn):
            raise ConfigError(f"loss_fn must be callable (output, batch) -> loss, got {loss_fn!r}")
        if batches is not None and (not isinstance(batches, int) or batches < 1):
            raise ConfigError(f"batches={batches!r} must be a positive int or None (all)")
        self.data = data
        self.loss_fn = loss_fn
        self.batches = batches
        self.inputs = inputs or default_inputs
        self.train_mode = train_mode
        self.needs: set[str] = set()
        self.request(*stats)
        self._cache: tuple[Any, Any, frozenset[str], CalibrationStats] | None = None
        self.owner = "Calibration"  # who uses it, for messages (set by the criterion)
        self._batches: list[Any] | None = None

    def request(self, *stats: str) -> None:
        """Ask for more stats on the next :meth:`collect`."""
        for s in stats:
            if s not in GRAD_STATS + ACT_STATS:
                raise ConfigError(
                    f"unknown calibration stat {s!r}; valid: {GRAD_STATS + ACT_STATS}"
                )
            self.needs.add(s)

    def batch_list(self) -> list[Any]:
        """The calibration batches, drawn once from ``data`` (so every criterion sees the same).

        Raises NonFiniteError if a batch's inputs hold NaN or infinity (every score computed
        from them would be NaN, and units would be cut arbitrarily)."""
        if self._batches is None:
            out = []
            for i, b in enumerate(self.data):
                if self.batches is not None and i >= self.batches:
                    break
                if i % distributed.world_size() != distributed.rank():
                    continue  # under torchrun each rank takes every world_size-th batch
                bad = non_finite(enumerate(flatten_tensors(self.inputs(b))))
                if bad:
                    raise NonFiniteError(
                        f"{self.owner}: calibration batch {i} holds non-finite inputs (tensor "
                        f"{', '.join(map(str, bad[:3]))}); every score computed from it would "
                        "be NaN: clean the data (torch.nan_to_num) or drop that batch"
                    )
                out.append(b)
            # every rank takes part in the count (a rank may get no batch under torchrun)
            if distributed.all_reduce_scalars([float(len(out))])[0] == 0.0:
                raise ConfigError("the calibration data yielded no batch; pass a non-empty loader")
            self._batches = out
        return self._batches

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """The scalar calibration loss of ``model`` on one batch."""
        if self.loss_fn is None:
            raise ConfigError(
                "this criterion needs a loss: pass loss_fn=(output, batch) -> scalar tensor"
            )
        loss = self.loss_fn(call_model(model, self.inputs(batch)), batch)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise ConfigError(
                "loss_fn must return a scalar tensor, got "
                f"{type(loss).__name__}{tuple(loss.shape) if isinstance(loss, torch.Tensor) else ''}"
                "; reduce it (e.g. .mean()) inside loss_fn"
            )
        return loss.reshape(())

    def forget(self) -> None:
        """Drop the cached stats: the next :meth:`ensure` collects again (the model's weights
        changed, e.g. units zeroed for re-scoring)."""
        self._cache = None

    def ensure(self, model: nn.Module, graph: DependencyGraph | None = None) -> CalibrationStats:
        """:meth:`collect` once per (model, graph, requested stats); later calls reuse it."""
        key = frozenset(self.needs)
        c = self._cache
        if c is not None and c[0] is model and c[1] is graph and key <= c[2]:
            return c[3]
        stats = self.collect(model, graph)
        self._cache = (model, graph, key, stats)
        return stats

    def collect(self, model: nn.Module, graph: DependencyGraph | None = None) -> CalibrationStats:
        """Run every calibration batch and return the raw sums (the model is left as it was).

        With ``graph``, only tensors and modules that are members of its groups are tracked.
        """
        params, modules = _tracked(model, graph)
        grads = bool(self.needs & set(GRAD_STATS))
        stats = CalibrationStats()
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        with (
            _mode(model, self.train_mode, params if grads else {}),
            _input_hooks(modules, stats, self.needs & set(ACT_STATS)),
        ):
            for i, batch in enumerate(self.batch_list()):
                loss = self._step(model, to_device(batch, device), params, stats, grads)
                if loss is not None and not math.isfinite(loss):
                    raise NonFiniteError(
                        f"{self.owner}: the loss on calibration batch {i} is {loss} (inputs "
                        "are finite): check loss_fn on that batch (log of 0, division by 0)"
                    )
        return stats.all_reduce() if distributed.active() else stats

    def _step(
        self,
        model: nn.Module,
        batch: Any,
        params: dict[str, nn.Parameter],
        stats: CalibrationStats,
        grads: bool,
    ) -> float | None:
        """One batch; returns its loss (``None`` without a loss)."""
        value = None
        if self.loss_fn is None and not grads:
            with torch.no_grad():
                call_model(model, self.inputs(batch))
        else:
            with torch.set_grad_enabled(grads):
                loss = self.loss(model, batch)
            value = float(loss.detach())
            if grads and math.isfinite(value):
                loss.backward()
                _add_grads(params, stats, self.needs)
            stats.loss_sum += value
        stats.count("batches", 1)
        stats.count("samples", count_samples([batch], self.inputs))
        return value


def _tracked(
    model: nn.Module, graph: DependencyGraph | None
) -> tuple[dict[str, nn.Parameter], dict[str, nn.Module]]:
    names = {m.name for g in graph.groups for m in g.members} if graph is not None else None
    params = {n: p for n, p in model.named_parameters() if names is None or n in names}
    modules = {}
    for n, mod in model.named_modules():
        tensor = input_weight(mod)
        full = f"{n}.{tensor}" if n else str(tensor)
        if tensor is not None and (names is None or full in names):
            modules[n] = mod
    return params, modules


def _grad_stat(stat: str, w: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    if stat == "grad":
        return g
    if stat == "grad_abs":
        return g.abs()
    if stat == "grad_sq":
        return g * g
    wg = w * g
    return wg if stat == "wg" else wg * wg


def _add_grads(params: dict[str, nn.Parameter], stats: CalibrationStats, needs: set[str]) -> None:
    norm_sq = 0.0  # ||g||^2 of the batch, for the calibration health check (health.py)
    for name, p in params.items():
        g = p.grad.detach().double() if p.grad is not None else torch.zeros_like(p).double()
        w = p.detach().double()
        norm_sq += float((g * g).sum())
        for stat in GRAD_STATS:
            if stat in needs:
                stats.add(f"{stat}/{name}", _grad_stat(stat, w, g))
        p.grad = None
    stats.count("grad_norm_sq", norm_sq)


@contextmanager
def _mode(model: nn.Module, train: bool, params: dict[str, nn.Parameter]) -> Iterator[None]:
    flags = [(m, m.training) for m in model.modules()]
    req = [(p, p.requires_grad, p.grad) for p in model.parameters()]
    model.train(train)
    for p in model.parameters():
        p.grad = None
    for p in params.values():
        p.requires_grad_(True)
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag
        for p, r, g in req:
            p.requires_grad_(r)
            p.grad = g


@contextmanager
def _input_hooks(
    modules: dict[str, nn.Module], stats: CalibrationStats, needs: set[str]
) -> Iterator[None]:
    handles = []
    if needs:
        for name, mod in modules.items():
            handles.append(mod.register_forward_pre_hook(_input_hook(name, mod, stats, needs)))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _input_hook(
    name: str, mod: nn.Module, stats: CalibrationStats, needs: set[str]
) -> Callable[[nn.Module, Any], None]:
    tensor = input_weight(mod)
    weight = mod._parameters[tensor] if tensor is not None else None
    assert tensor is not None and weight is not None  # guaranteed by _tracked
    dim = input_dim(mod, weight, tensor)
    size = weight.shape[dim] if dim is not None else -1
    feat = -1 if weight.dim() == 2 else 1

    def hook(module: nn.Module, args: Any) -> None:
        x = args[0] if isinstance(args, tuple) and args else None
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 1:
            return
        if feat >= x.dim() or x.shape[feat] != size:
            return
        rows = x.detach().movedim(feat, -1).reshape(-1, size).double()
        parts = {"act_abs": rows.abs, "act_sq": lambda: rows * rows,
                 "act_zero": lambda: (rows == 0).double()}  # fmt: skip
        for stat in needs:
            stats.add(f"{stat}/{name}", parts[stat]().sum(0))
        stats.count(f"act/{name}", rows.shape[0])

    return hook
