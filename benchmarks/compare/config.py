"""Typed configuration of the side-by-side benchmark: tasks, recovery and the two presets.

A :class:`TaskSpec` names one model on one dataset and the budgets to prune it to
(MACs reduction factors, or fractions of hidden neurons for the MLP task). A
:class:`BenchConfig` holds the tasks, seeds and the recovery shared by every method.
:func:`preset` builds the ``quick`` and ``full`` configurations.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from prunekit.errors import ConfigError

__all__ = ["BenchConfig", "RecoverySpec", "TaskSpec", "preset", "PRESETS"]


@dataclass(frozen=True)
class RecoverySpec:
    """Recovery run identically after every cut (the baselines get the same).

    Example:
        >>> RecoverySpec(epochs=2).to_dict()["optimizer"]
        'sgd'
    """

    epochs: int = 3
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_schedule: str = "cosine"
    bn_samples: int = 1024

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TaskSpec:
    """One benchmark task: a model trained from scratch on a dataset, pruned to some budgets.

    Attributes:
        name: Unique task key, e.g. ``"t1-resnet20-animal_mnist"``.
        kind: ``"macs"`` (levels are MACs reduction factors, e.g. 2.0) or ``"neurons"``
            (levels are fractions of hidden neurons removed, e.g. 0.5).
        levels: The budgets.
        train_epochs: Epochs of the baseline training (cached by task, seed and epochs).
        train_subset: Use only this many training samples (``None``: all).
        model_kwargs: Passed to :func:`prunekit.models.build_model`.
        methods: The methods compared (names from ``methods.method_names()``).
        seeds: Seeds of this task (``None``: the run's seeds).

    Example:
        >>> TaskSpec("t4", "mnist1d", "cnn1d", "macs", (2.0,)).label
        'cnn1d on mnist1d'
    """

    name: str
    dataset: str
    model: str
    kind: str
    levels: tuple[float, ...]
    train_epochs: int = 15
    train_lr: float = 0.1
    batch_size: int = 64
    train_subset: int | None = None
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    methods: tuple[str, ...] = ()
    seeds: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("macs", "neurons"):
            raise ConfigError(f"TaskSpec {self.name}: kind={self.kind!r}; use 'macs' or 'neurons'")
        bad = [lv for lv in self.levels if (lv <= 1.0 if self.kind == "macs" else not 0 < lv < 1)]
        if bad or not self.levels:
            raise ConfigError(
                f"TaskSpec {self.name}: levels {self.levels} invalid for kind={self.kind!r}; "
                "MACs factors must be > 1, neuron fractions in (0, 1)"
            )

    @property
    def label(self) -> str:
        return f"{self.model} on {self.dataset}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BenchConfig:
    """Everything one run uses; stored verbatim in the JSON results.

    Example:
        >>> cfg = preset("quick")
        >>> cfg.mode, len(cfg.seeds)
        ('quick', 2)
    """

    mode: str
    tasks: tuple[TaskSpec, ...]
    seeds: tuple[int, ...]
    recovery: RecoverySpec
    criteria_task: str | None
    criteria_ratios: tuple[float, ...] = (0.3, 0.5, 0.7)
    latency_runs: int = 50
    latency_threads: int = 1
    latency_rounds: int = 5
    calib_batches: int = 8
    criteria_seeds: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["tasks"] = [t.to_dict() for t in self.tasks]
        return out

    def select(self, names: tuple[str, ...]) -> BenchConfig:
        """Keep only the tasks whose name starts with one of ``names``."""
        known = [t.name for t in self.tasks]
        kept = tuple(t for t in self.tasks if any(t.name.startswith(n) for n in names))
        if not kept:
            raise ConfigError(f"--tasks {list(names)} matches no task; valid: {known}")
        crit = self.criteria_task if self.criteria_task in {t.name for t in kept} else None
        return replace(self, tasks=kept, criteria_task=crit)


_VISION = (
    "pk-l2-local",
    "pk-l2-global",
    "pk-l2-global+kd",
    "pk-l2-local+comp",
    "pk-l2-global+comp",
    "pk-l2-global-r8+comp",
    "pk-l2-global-r8",
    "pk-l2-global-r16",
    "pk-lamp-global",
    "pk-lamp-global+comp",
    "pk-l2-local+noise",
    "pk-taylor-global",
    "pk-taylor-global-r8",
    "pk-taylor-global+kd",
    "pk-fuse-global+kd",
)
_TP = ("tp-l2-local", "tp-l2-global", "tp-taylor-global", "tp-lamp-global", "tp-bn-local")
_CONTROLS = ("random-local", "torch-l1-unstructured")
_QUICK_T1 = ("pk-l2-local", "pk-l2-global", "pk-l2-global+kd", "pk-l2-global+comp",
             "pk-l2-global-r8", "pk-taylor-global-r8", "pk-taylor-global+kd",
             "tp-l2-local", "tp-l2-global", "tp-taylor-global", "torch-l1-unstructured")  # fmt: skip
_QUICK_T4 = ("pk-l2-local", "pk-l2-local+comp", "pk-l2-global-r8", "pk-l2-local+noise",
             "pk-taylor-global+kd",
             "tp-l2-local", "tp-l2-global", "tp-taylor-global",
             "random-local", "torch-l1-unstructured")  # fmt: skip
_MLP = ("pk-l2-local", "pk-l2-local+comp", "pk-taylor-local", "pk-taylor-elem-local",
        "tp-l2-local", "tp-taylor-local", "random-local")  # fmt: skip


def _full() -> BenchConfig:
    vision = _VISION + _TP + _CONTROLS
    tasks = [
        TaskSpec(f"t1-{m}-{d}", d, m, "macs", (2.0, 4.0), methods=vision)
        for m in ("resnet20", "vgg")
        for d in ("animal_mnist", "mnist")
    ]
    tasks += [
        TaskSpec(f"t2-mlp-{d}", d, "mlp", "neurons", (0.5, 0.75), train_epochs=40,
                 train_lr=0.05, batch_size=32, methods=_MLP)
        for d in ("breast_cancer", "wine", "digits")
    ]  # fmt: skip
    tasks.append(TaskSpec("t4-cnn1d-mnist1d", "mnist1d", "cnn1d", "macs", (2.0,),
                          train_epochs=30, methods=vision))  # fmt: skip
    return BenchConfig("full", tuple(tasks), (0, 1, 2), RecoverySpec(epochs=3), "t4-cnn1d-mnist1d",
                       criteria_ratios=(0.2, 0.4, 0.6, 0.8), latency_runs=60)  # fmt: skip


def _quick() -> BenchConfig:
    tasks = (
        TaskSpec("t1-resnet20-animal_mnist", "animal_mnist", "resnet20", "macs", (2.0,),
                 train_epochs=6, methods=_QUICK_T1, seeds=(0,)),
        TaskSpec("t2-mlp-breast_cancer", "breast_cancer", "mlp", "neurons", (0.5, 0.75),
                 train_epochs=20, train_lr=0.05, batch_size=32, methods=_MLP),
        TaskSpec("t2-mlp-digits", "digits", "mlp", "neurons", (0.5, 0.75),
                 train_epochs=20, train_lr=0.05, batch_size=32, methods=_MLP),
        TaskSpec("t4-cnn1d-mnist1d", "mnist1d", "cnn1d", "macs", (2.0,),
                 train_epochs=15, methods=_QUICK_T4),
    )  # fmt: skip
    return BenchConfig("quick", tasks, (0, 1), RecoverySpec(epochs=1), "t4-cnn1d-mnist1d",
                       latency_runs=20, calib_batches=4, criteria_seeds=1)  # fmt: skip


PRESETS = {"quick": _quick, "full": _full}


def preset(mode: str) -> BenchConfig:
    """The ``quick`` (< 15 min on 2 cores) or ``full`` (the issue's protocol) configuration.

    Raises:
        ConfigError: If ``mode`` is neither.
    """
    if mode not in PRESETS:
        raise ConfigError(f"benchmark mode {mode!r} unknown; valid: {sorted(PRESETS)}")
    return PRESETS[mode]()
