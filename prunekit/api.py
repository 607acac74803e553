"""``prunekit.prune``: one call for every way of pruning (one-shot, scheduled, weight-level)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, TypedDict, overload

from torch import nn

from .checks import check_model
from .errors import ConfigError
from .importance import Importance
from .pruner import Pruner
from .result import PruneResult
from .schedule import Callback, Schedule, run_schedule
from .sparsity.weight_level import WeightPruneResult, is_weight_level, prune_weight_level
from .spec import CutSpec, renamed

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["prune"]


class _Options(TypedDict, total=False):
    """The keyword options every form of :func:`prune` accepts (for its overloads)."""

    ratio: float | None
    importance: str | Importance
    scope: str
    ignore: Any
    round_to: int
    inplace: bool
    module_ratios: dict[str, float] | None
    threshold: float | None
    max_ratio: float
    target_params: float | None
    target_macs: float | None
    trace_mode: str
    group_ratios: dict[str, float] | None
    verify: str
    bn_data: Any
    calibration_data: Any
    attention: str
    streams: str
    spec: CutSpec | None
    steps: int | None
    ramp: str
    callback: Callback | None


@overload
def prune(
    model: nn.Module,
    example_inputs: Any,
    *,
    schedule: None = None,
    granularity: Literal["structured"] = "structured",
    **options: Unpack[_Options],
) -> PruneResult: ...
@overload
def prune(
    model: nn.Module,
    example_inputs: Any,
    *,
    schedule: str | Schedule,
    granularity: Literal["structured"] = "structured",
    **options: Unpack[_Options],
) -> PruneResult: ...
@overload
def prune(
    model: nn.Module,
    example_inputs: Any,
    *,
    granularity: str,
    schedule: str | Schedule | None = None,
    **options: Unpack[_Options],
) -> WeightPruneResult: ...
def prune(
    model: nn.Module,
    example_inputs: Any,
    *,
    ratio: float | None = None,
    importance: str | Importance = "l2",
    scope: str = "local",
    ignore: Any = (),
    round_to: int = 1,
    inplace: bool = False,
    module_ratios: dict[str, float] | None = None,
    threshold: float | None = None,
    max_ratio: float = 1.0,
    target_params: float | None = None,
    target_macs: float | None = None,
    trace_mode: str = "eval",
    group_ratios: dict[str, float] | None = None,
    verify: str = "exact",
    bn_data: Any = None,
    attention: str = "heads",
    streams: str = "keep",
    spec: CutSpec | None = None,
    schedule: str | Schedule | None = None,
    steps: int | None = None,
    ramp: str = "cubic",
    callback: Callback | None = None,
    granularity: str = "structured",
    calibration_data: Any = None,
) -> PruneResult | WeightPruneResult:
    """Prune ``model``: remove its lowest-scoring units (or mask its lowest weights).

    Args:
        model: the model to prune; untouched unless ``inplace=True`` (its forward runs on
            copies with their own buffers, so counters and EMA statistics stay as they were).
            Non-finite weights raise :class:`~prunekit.errors.NonFiniteError` first.
        example_inputs: a tensor, a tuple of positional inputs, or a dict of keyword inputs.
        ratio: fraction of units to remove, in [0, 1) (with a schedule: the final fraction;
            at weight level: the fraction of weights).
        importance: a criterion name (``"l1"``, ``"l2"``, ``"taylor"``, ``"loss"``,
            ``"random"`` ... see :func:`prunekit.importance.available_importances`) or object
            (e.g. ``Taylor(data=loader, loss_fn=fn)``, ``Fuse(["taylor", "l2"])``); an
            object with a ``prepare(model, graph)`` method (data-driven criteria) is prepared
            on the analysed copy first, again before every step of a schedule.
        scope: ``"local"`` (same fraction per group) or ``"global"`` (ranked across groups);
            at weight level also ``"row"`` (per output unit).
        ignore: modules (or qualified names) whose own output units must be kept.
        round_to: kept widths are rounded up to a multiple of this.
        inplace: modify ``model`` itself; on failure it is left as it was.
        module_ratios: per-module ratios by name or glob, e.g. ``{"layer3": 0.6}``.
        threshold: also remove every unit whose score is below this.
        max_ratio: remove at most this fraction of any group.
        target_params: a parameter budget: a count, or a float in (0, 1) (fraction to keep).
        target_macs: a MACs budget, like ``target_params``.
        trace_mode: ``"train"`` traces in train mode, to include branches that only run in
            training (auxiliary heads); default ``"eval"``.
        group_ratios: per-group ratios by group key (``"0.weight:0"``, as printed by
            :func:`prunekit.analyze`), e.g. ``Sensitivity.allocate(0.5).group_ratios``; they
            win over ``module_ratios`` and ``ratio`` for the groups they name.
        verify: how the cut is checked before it is returned: ``"exact"`` (default: it runs,
            keeps the output shapes, and its outputs equal the unpruned model's with the
            removed units zeroed, for every exact group; two forward passes) or ``"shapes"``
            (only runs with the same output shapes, on the meta device when possible: faster,
            but blind to code that silently reads a stale size). If the check fails, every
            group is probed with a trial cut, the breaking ones are frozen, and the step is
            redone.
        bn_data: batches (e.g. a ``DataLoader``) to re-estimate every BatchNorm's
            running statistics on after each cut (a cut changes what each BatchNorm sees, and
            stale statistics can drop accuracy to chance). Defaults to the data-driven
            criterion's own calibration data; pass ``False`` to skip. Without either, the
            statistics are left as they were, with a warning for a model with BatchNorm.
            Batches that do not fit the model (checked on the first one before the cut) or
            hold NaN raise :class:`~prunekit.errors.DataError` naming the batch; the model
            is never left half-done (also with ``inplace=True``).
        calibration_data: the former name of ``bn_data`` (deprecated: it warns; the word
            "calibration" now means only a criterion's calibration data).
        attention: what an attention unit is: ``"heads"`` (default: whole heads; with
            grouped-query attention, a KV head with its query heads) or ``"head_dims"`` (dim d
            of every head, so heads stay equal in size; head-size attributes follow the cut).
            Code that computes its scale from the head size (SDPA's default) makes these
            groups non-exact.
        streams: ``"keep"`` (default) leaves model-wide residual streams (a group reaching
            every block of a stack that holds most of the model's numbered blocks: a
            transformer's hidden size, :attr:`Group.model_stream`) out of ``ratio``,
            ``threshold``, ``module_ratios`` and budget cuts, with a warning naming them;
            a ``group_ratios`` entry naming one still cuts it. ``"prune"``: cut them like
            any group. A ResNet stage's channels are not model-wide.
        spec: a :class:`prunekit.spec.CutSpec` instead of the sizing keywords (``ratio``,
            ``scope``, ``module_ratios``, ``group_ratios``, ``threshold``, ``max_ratio``,
            ``round_to``, ``streams``, ``target_params``, ``target_macs``): the same fields,
            built once, e.g. ``CutSpec(target_macs=0.5, round_to=8)``.
        schedule: when to cut: ``None`` (one step), ``"oneshot"``, ``"iterative"``
            (``steps`` steps along a ``ramp``, re-scoring before each), ``"hierarchical"``
            (``steps`` stages, deepest groups first), a registered name (see
            :func:`prunekit.schedule.register_schedule`) or a schedule object
            (``prunekit.schedule.Iterative(0.5, steps=8)``). A schedule ramps the whole
            spec: a ratio, per-module/per-group ratios, or a ``target_macs`` /
            ``target_params`` budget (e.g. ``target_macs=0.5, schedule="iterative"``).
        steps: iterative steps / hierarchical stages (default 4 / 2).
        ramp: ``"cubic"`` (Zhu & Gupta 2017) or ``"linear"``, for ``"iterative"``.
        callback: ``callback(model, step)`` between steps, e.g. a short fine-tune.
        granularity: ``"structured"`` (default: remove whole units), ``"unstructured"``
            (mask single weights) or ``"N:M"`` (``"2:4"``, ``"4:8"``: keep N of every M
            weights along the input dim). Weight level takes ``ratio``, ``importance``
            (``"magnitude"``/``"l1"``/``"l2"``, ``"random"``, ``Taylor(data=, loss_fn=)``,
            ``Wanda(data=)``), ``scope``, ``ignore``, ``inplace`` and an ``"iterative"``
            schedule. On CPU it saves bytes (``result.save(path)``), not time.

    Returns:
        One type per granularity. Structured: a :class:`PruneResult` (``.model``,
        ``.plan``: the replayable :class:`PruningPlan`, ``.steps``: each step's own
        result, ``[result]`` for one step, ``.summary()``: costs and widths before the
        first step and after the last); with a schedule its plan is a list of steps
        (``plan.steps``). At weight level a :class:`prunekit.sparsity.WeightPruneResult`
        (``.model`` with masks kept during fine-tuning, ``.summary()`` per layer,
        ``.make_permanent()``, ``.save(path)``).

    Example:
        >>> import torch, prunekit
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(),
        ...                           torch.nn.Conv2d(8, 4, 3))
        >>> x = torch.randn(1, 3, 8, 8)
        >>> prunekit.prune(net, x, ratio=0.5).model[0].out_channels
        4
        >>> res = prunekit.prune(net, x, ratio=0.5, schedule="iterative", steps=2, ramp="linear")
        >>> [p.num_removed for p in res.plan.steps], res.model[0].out_channels
        ([2, 2], 4)
        >>> sparse = prunekit.prune(net, x, ratio=0.75, granularity="unstructured")
        >>> round(sparse.summary().weight_sparsity, 2), type(sparse.make_permanent()[0]).__name__
        (0.75, 'Conv2d')
    """
    if is_weight_level(granularity):
        check_model(model)
        sizing: dict[str, Any] = {"module_ratios": module_ratios, "threshold": threshold,
                  "target_params": target_params, "target_macs": target_macs,
                  "group_ratios": group_ratios, "max_ratio": max_ratio < 1.0,
                  "round_to": round_to != 1, "trace_mode": trace_mode != "eval",
                  "verify": verify != "exact", "streams": streams != "keep", "spec": spec}  # fmt: skip
        return prune_weight_level(
            model, granularity=granularity, ratio=ratio, importance=importance, scope=scope,
            ignore=ignore, inplace=inplace, schedule=schedule, steps=steps, ramp=ramp,
            callback=callback, structured_only=sorted(k for k, v in sizing.items() if v),
        )  # fmt: skip
    if schedule is None and (steps is not None or callback is not None):
        raise ConfigError(
            f"steps={steps!r}/callback={callback!r} need a schedule: pass schedule='iterative'"
        )
    pruner = Pruner(
        model, example_inputs, importance=importance, ratio=ratio, scope=scope, ignore=ignore,
        round_to=round_to, module_ratios=module_ratios, threshold=threshold,
        max_ratio=max_ratio, target_params=target_params, target_macs=target_macs,
        inplace=inplace, trace_mode=trace_mode, group_ratios=group_ratios, verify=verify,
        bn_data=renamed("bn_data", bn_data, "calibration_data", calibration_data, "prune"),
        attention=attention, streams=streams, spec=spec,
    )  # fmt: skip
    if schedule is None:
        return pruner.step()
    named = isinstance(schedule, str)
    return run_schedule(
        pruner, schedule, ratio=pruner.spec.ratio if named else None, steps=steps, ramp=ramp,
        callback=callback, sized=pruner.spec.sized,
    )  # fmt: skip
