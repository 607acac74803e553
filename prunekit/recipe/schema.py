"""The typed recipe: one pydantic model per YAML section, every unknown key rejected.

A recipe says what to prune (``model``), on what (``data``), how to get a trained baseline
(``train``, cached), how to cut (``prune``, or ``search`` for the cut), how to recover
(``recovery``), how to measure (``evaluation``) and where to write (``output``). Names are
checked against the live registries, so the valid choices in an error are always current.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..spec import (
    FINETUNE,
    SEARCH_MAX_RATIO,
    SEARCH_STEPS,
    STRATEGY_SCOPE,
    CutSpec,
)

__all__ = [
    "MODEL_PREFIXES",
    "DATA_PREFIXES",
    "BudgetSpec",
    "DataSpec",
    "DistillSpec",
    "EvaluationSpec",
    "FinetuneSpec",
    "ModelSpec",
    "NoiseSpec",
    "OutputSpec",
    "PruneSpec",
    "Recipe",
    "RecoverySpec",
    "SearchSpec",
    "StrategySpec",
    "TrainSpec",
]

MODEL_PREFIXES = ("torchvision", "timm", "hf", "python")
"""``prefix:rest`` model sources besides the built-in names."""

DATA_PREFIXES = ("python",)
"""``prefix:rest`` data sources besides the built-in names."""


STRUCTURE_ONLY = "structure_only"
"""Validation context key: with ``{STRUCTURE_ONLY: True}`` the names of criteria, models,
datasets and optimizers are not looked up in their registries (which import torch), so
unknown keys, wrong types and bad paths are reported in a fraction of a second."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


def _names_checked(info: ValidationInfo) -> bool:
    return not (isinstance(info.context, dict) and info.context.get(STRUCTURE_ONLY))


def _available(kind: str) -> list[str]:
    """The registered names of ``kind`` (imported here: the registries import torch)."""
    if kind == "importance":
        from ..importance import available_importances

        return list(available_importances())
    if kind == "optimizer":
        from ..recovery import available_optimizers

        return list(available_optimizers())
    if kind == "model":
        from ..models import available_models

        return list(available_models())
    from ..data import available_datasets

    return list(available_datasets())


def _check_importance(value: str, info: ValidationInfo) -> str:
    if _names_checked(info) and value.lower() not in _available("importance"):
        raise ValueError(
            f"{value!r} is not a criterion; valid: {', '.join(_available('importance'))}"
        )
    return value.lower()


def _check_optimizer(value: str, info: ValidationInfo) -> str:
    if _names_checked(info) and value.lower() not in _available("optimizer"):
        raise ValueError(
            f"{value!r} is not an optimizer; valid: {', '.join(_available('optimizer'))}"
        )
    return value.lower()


class ModelSpec(_Section):
    """``model``: a built-in name, ``torchvision:NAME``, ``timm:NAME``, ``hf:PATH`` (local
    files only) or ``python:MODULE_OR_FILE:FUNCTION``; optional ``weights`` (a state_dict in
    ``.safetensors`` or ``.pt``) and ``kwargs`` for the builder."""

    name: str
    weights: str | None = None
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, value: str, info: ValidationInfo) -> str:
        prefix, sep, rest = value.partition(":")
        if sep:
            if prefix not in MODEL_PREFIXES or not rest:
                raise ValueError(
                    f"{value!r} is not a model source; use a built-in name "
                    f"({', '.join(_available('model'))}) or one of "
                    "torchvision:NAME, timm:NAME, hf:PATH, python:MODULE:FUNCTION"
                )
            if prefix == "python" and rest.count(":") < 1:
                raise ValueError(
                    f"{value!r} names no function; write python:MODULE:FUNCTION, e.g. "
                    "python:./my_model.py:build"
                )
            return value
        if _names_checked(info) and value.lower() not in _available("model"):
            raise ValueError(
                f"{value!r} is not a model; valid: {', '.join(_available('model'))}, or "
                "torchvision:NAME, timm:NAME, hf:PATH, python:MODULE:FUNCTION"
            )
        return value.lower()


class DataSpec(_Section):
    """``data``: a built-in dataset or ``python:MODULE_OR_FILE:FUNCTION`` returning
    ``(train_loader, val_loader[, test_loader])``; images can be widened to ``channels``
    (grey repeated) and resized to ``size`` x ``size`` for models that expect RGB input."""

    name: str
    batch_size: int = Field(64, ge=1)
    eval_batch_size: int = Field(256, ge=1)
    seed: int = 0
    channels: int | None = Field(None, ge=1)
    size: int | None = Field(None, ge=1)
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, value: str, info: ValidationInfo) -> str:
        prefix, sep, rest = value.partition(":")
        if sep:
            if prefix not in DATA_PREFIXES or ":" not in rest:
                raise ValueError(
                    f"{value!r} is not a data source; use a built-in dataset "
                    f"({', '.join(_available('dataset'))}) or python:MODULE:FUNCTION"
                )
            return value
        key = value.strip().lower().replace("-", "_")
        if _names_checked(info) and key not in _available("dataset"):
            raise ValueError(
                f"{value!r} is not a dataset; valid: {', '.join(_available('dataset'))}, or "
                "python:MODULE:FUNCTION"
            )
        return key


class TrainSpec(_Section):
    """``train``: baseline training when ``model.weights`` is not given (cached by hash)."""

    epochs: int = Field(3, ge=0)
    lr: float = Field(1e-3, gt=0)
    optimizer: str = "adam"
    weight_decay: float = Field(0.0, ge=0)
    cache: bool = True

    _opt = field_validator("optimizer")(_check_optimizer)


_CUT = CutSpec()  # the library's defaults, which the recipe's prune section takes


class PruneSpec(_Section):
    """``prune``: criterion (a name, or a list fused by rank), scope and one way to size the
    cut (``ratio``, ``target_macs`` or ``target_params``: a fraction to keep or a count),
    plus ``schedule`` (``oneshot`` (``one-shot`` is accepted) or ``iterative`` over
    ``steps``). The sizing fields and their defaults are :class:`prunekit.spec.CutSpec`'s
    (:meth:`cut_spec` builds it): ``scope`` defaults to ``local``, as in ``prune()``.
    A data-driven criterion calibrates on ``calibration_batches`` batches of
    ``calibration_split``: ``val`` (default: held out from training; on the training data
    of a model that fits it, gradients and loss changes are noise) or ``train``."""

    importance: str | list[str] = "l2"
    scope: Literal["local", "global"] = _CUT.scope  # type: ignore[assignment]
    ratio: float | None = Field(None, ge=0, lt=1)
    target_macs: float | None = Field(None, gt=0)
    target_params: float | None = Field(None, gt=0)
    round_to: int = Field(_CUT.round_to, ge=1)
    ignore: list[str] = Field(default_factory=list)
    module_ratios: dict[str, float] = Field(default_factory=dict)
    max_ratio: float = Field(_CUT.max_ratio, gt=0, le=1)
    streams: Literal["keep", "prune"] = _CUT.streams  # type: ignore[assignment]
    schedule: Literal["oneshot", "iterative"] = "oneshot"
    steps: int = Field(1, ge=1)
    calibration_batches: int = Field(8, ge=1)
    calibration_split: Literal["val", "train"] = "val"

    @field_validator("schedule", mode="before")
    @classmethod
    def _schedule_name(cls, value: Any) -> Any:
        return "oneshot" if value == "one-shot" else value

    def cut_spec(self) -> CutSpec:
        """The library's :class:`~prunekit.spec.CutSpec` this section says."""
        return CutSpec(
            self.ratio, self.scope, dict(self.module_ratios), None, self.max_ratio,
            self.round_to, target_params=self.target_params, target_macs=self.target_macs,
            streams=self.streams,
        )  # fmt: skip

    @field_validator("importance")
    @classmethod
    def _criteria(cls, value: str | list[str], info: ValidationInfo) -> str | list[str]:
        if isinstance(value, list):
            if not value:
                raise ValueError("an empty list; give a criterion name or a list to fuse")
            return [_check_importance(v, info) for v in value]
        return _check_importance(value, info)

    @model_validator(mode="after")
    def _one_size(self) -> PruneSpec:
        given = [k for k in ("ratio", "target_macs", "target_params") if getattr(self, k)]
        if len(given) > 1:
            raise ValueError(f"give one of ratio, target_macs, target_params (got {given})")
        if not given and not self.module_ratios:
            raise ValueError(
                "nothing says how much to cut; add ratio: 0.5, target_macs: 0.5 (keep half "
                "the MACs) or target_params: 0.5"
            )
        if self.schedule == "oneshot" and self.steps != 1:
            raise ValueError(f"steps: {self.steps} needs schedule: iterative")
        return self


class BudgetSpec(_Section):
    """``search.budget``: ``macs`` or ``params`` (fraction to keep, or a count)."""

    macs: float | None = Field(None, gt=0)
    params: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _one(self) -> BudgetSpec:
        if (self.macs is None) == (self.params is None):
            raise ValueError("give exactly one of macs, params (e.g. macs: 0.5)")
        return self


class StrategySpec(_Section):
    """One strategy the search compares: a criterion and a scope."""

    importance: str = "l2"
    scope: Literal["local", "global"] = STRATEGY_SCOPE  # type: ignore[assignment]
    name: str = ""

    _imp = field_validator("importance")(_check_importance)


class SearchSpec(_Section):
    """``search``: find the cut by ``tolerance`` (largest accuracy drop, fraction) or the
    best accuracy within ``budget``, comparing ``strategies``. ``curve`` lists overall
    ratios at which every strategy is also measured (calibrated and recovered like the
    search's candidates), so the report's trade-off plot shows each strategy's curve and
    not only the point a budget search lands on."""

    tolerance: float | None = Field(None, ge=0, lt=1)
    budget: BudgetSpec | None = None
    strategies: list[StrategySpec] = Field(default_factory=lambda: [StrategySpec.model_construct()])
    steps: int = Field(SEARCH_STEPS, ge=1)
    max_ratio: float = Field(SEARCH_MAX_RATIO, gt=0, lt=1)
    recover_epochs: int = Field(0, ge=0)
    curve: list[float] = Field(default_factory=list)

    @field_validator("curve")
    @classmethod
    def _curve(cls, value: list[float]) -> list[float]:
        bad = [r for r in value if not 0 < r < 1]
        if bad:
            raise ValueError(f"ratios {bad} must lie in (0, 1), e.g. curve: [0.25, 0.5, 0.75]")
        return sorted(set(value))

    @model_validator(mode="after")
    def _one(self) -> SearchSpec:
        if (self.tolerance is None) == (self.budget is None):
            raise ValueError("give exactly one of tolerance (e.g. 0.01) or budget: {macs: 0.5}")
        return self


class FinetuneSpec(_Section):
    """``recovery.finetune``: epochs of fine-tuning after the cut (and the optimizer and lr
    of a search's quick ``recover_epochs``). Defaults are
    :class:`prunekit.recovery.FinetuneConfig`'s (:data:`prunekit.spec.FINETUNE`: sgd,
    lr 0.01, 3 epochs, cosine)."""

    epochs: int = Field(FINETUNE.epochs, ge=1)
    lr: float = Field(FINETUNE.lr, gt=0)
    optimizer: str = FINETUNE.optimizer
    lr_schedule: str = FINETUNE.lr_schedule
    patience: int | None = Field(None, ge=1)

    _opt = field_validator("optimizer")(_check_optimizer)


class DistillSpec(_Section):
    """``recovery.distill``: distil the unpruned model into the pruned one while fine-tuning."""

    temperature: float = Field(4.0, gt=0)
    alpha: float = Field(0.5, ge=0, le=1)


def _renamed_key(data: Any, info: ValidationInfo, old: str, new: str, message: str) -> Any:
    """A section's mapping with the deprecated key ``old`` renamed ``new`` (one FutureWarning,
    in the full pass); both keys at once is an error."""
    if not isinstance(data, dict) or old not in data:
        return data
    data = dict(data)
    if new in data:
        raise ValueError(f"give {new} only; {old} is its deprecated name (remove {old})")
    data[new] = data.pop(old)
    if _names_checked(info):  # the structural pre-pass stays silent: warn once
        warnings.warn(message, FutureWarning, stacklevel=2)
    return data


class NoiseSpec(_Section):
    """``recovery.noise``: weight noise during fine-tuning."""

    scale: float = Field(0.01, ge=0)
    decay: Literal["linear", "cosine", "exponential"] = "linear"


class RecoverySpec(_Section):
    """``recovery``: BN re-estimation (on by default), compensation, fine-tuning. The old
    key ``bn_recalibration`` means ``bn_reestimation`` and is accepted with a warning."""

    bn_reestimation: bool = True
    compensate: bool = False
    finetune: FinetuneSpec | None = None
    distill: DistillSpec | None = None
    noise: NoiseSpec | None = None

    @field_validator("bn_reestimation")
    @classmethod
    def _always_reestimate(cls, value: bool) -> bool:
        if not value:
            raise ValueError(
                "false is not supported: the pipeline re-estimates BatchNorm statistics after "
                "every cut (stale statistics can drop a cut model to chance); remove the key"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _renamed_bn(cls, data: Any, info: ValidationInfo) -> Any:
        return _renamed_key(
            data, info, "bn_recalibration", "bn_reestimation",
            "recovery.bn_recalibration is deprecated: rename it to recovery.bn_reestimation "
            "(same meaning: re-estimate BatchNorm statistics after the cut)",
        )  # fmt: skip

    @model_validator(mode="after")
    def _needs_finetune(self) -> RecoverySpec:
        for name in ("distill", "noise"):
            if getattr(self, name) is not None and self.finetune is None:
                raise ValueError(f"{name} acts during fine-tuning; add finetune: {{epochs: 3}}")
        return self


class EvaluationSpec(_Section):
    """``evaluation``: which split, latency batch sizes and threads, sensitivity.

    ``latency_threads`` sets the intra-op threads only while latency is timed (the count in
    force before is restored); ``None`` times with the run's own count. The old key
    ``threads`` means the same and is accepted with a deprecation warning.
    """

    split: Literal["val", "test"] = "test"
    latency: bool = True
    batch_sizes: list[int] = Field(default_factory=lambda: [1, 64])
    latency_threads: int | None = Field(None, ge=1)
    runs: int = Field(30, ge=1)
    sensitivity: bool = False
    sensitivity_ratios: list[float] = Field(default_factory=lambda: [0.25, 0.5, 0.75])

    @model_validator(mode="before")
    @classmethod
    def _renamed_threads(cls, data: Any, info: ValidationInfo) -> Any:
        return _renamed_key(
            data, info, "threads", "latency_threads",
            "evaluation.threads is deprecated: it now sets the threads of the latency "
            "measurement only (not of training); rename it to evaluation.latency_threads, "
            "and use the top-level `threads:` to fix the threads of the whole run",
        )  # fmt: skip

    @field_validator("batch_sizes")
    @classmethod
    def _sizes(cls, value: list[int]) -> list[int]:
        if not value or min(value) < 1:
            raise ValueError(f"{value} must be a non-empty list of positive batch sizes")
        return value


class OutputSpec(_Section):
    """``output``: the run directory (relative paths are relative to the working directory)."""

    dir: str = "runs/{name}"
    save_model: bool = True


class Recipe(_Section):
    """A whole recipe. ``base_dir`` (where the file was) resolves relative paths.

    ``threads`` (optional) fixes ``torch.set_num_threads`` for the whole run (training,
    recovery, evaluation) and restores the previous count afterwards; by default the run
    keeps the process's setting (``OMP_NUM_THREADS`` or torch's own default).

    Example:
        >>> r = Recipe.model_validate({"model": {"name": "mlp"}, "data": {"name": "iris"},
        ...                            "prune": {"ratio": 0.5}})
        >>> r.prune.scope, r.recovery.bn_reestimation, r.run_dir().as_posix()
        ('local', True, 'runs/run')
    """

    name: str = "run"
    threads: int | None = Field(None, ge=1)
    model: ModelSpec
    data: DataSpec
    train: TrainSpec = Field(default_factory=lambda: TrainSpec.model_construct())
    prune: PruneSpec | None = None
    search: SearchSpec | None = None
    recovery: RecoverySpec = Field(default_factory=RecoverySpec)
    evaluation: EvaluationSpec = Field(default_factory=lambda: EvaluationSpec.model_construct())
    output: OutputSpec = Field(default_factory=OutputSpec)
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _source: str = PrivateAttr(default="<recipe>")

    @property
    def base_dir(self) -> Path:
        """The directory relative paths in the recipe are resolved against."""
        return self._base_dir

    @property
    def source(self) -> str:
        """Where the recipe came from (a file name, for messages)."""
        return self._source

    def located(self, base_dir: str | Path, source: str) -> Recipe:
        """Set where the recipe came from; returns ``self``."""
        self._base_dir = Path(base_dir)
        self._source = source
        return self

    def path(self, value: str) -> Path:
        """``value`` as a path, relative ones resolved against :attr:`base_dir`."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self._base_dir / p

    def run_dir(self) -> Path:
        """The output directory, ``{name}`` replaced by the recipe name."""
        return Path(self.output.dir.replace("{name}", self.name))

    def to_dict(self) -> dict[str, Any]:
        """The recipe as plain JSON/YAML data (defaults filled in)."""
        return self.model_dump(mode="json")
