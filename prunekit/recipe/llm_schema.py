"""The typed sections of an LLM recipe (``kind: llm``) and the whole :class:`LLMRecipe`
(:mod:`prunekit.recipe.llm` reads a file into it; the prune steps are in
:mod:`.llm_steps`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from .llm_steps import PruneStep, registered_names
from .schema import _names_checked, _Section

__all__ = [
    "BASE_DIR",
    "LLM_KIND",
    "LLMDistillSpec",
    "LLMEvaluationSpec",
    "LLMModelSpec",
    "LLMOutputSpec",
    "LLMRecipe",
    "LLMRecoverySpec",
    "SampleSpec",
    "SpeedSpec",
    "TextDataSpec",
    "looks_like_path",
]

LLM_KIND = "llm"
"""The value of a recipe's top-level ``kind`` that selects this schema."""

BASE_DIR = "base_dir"
"""Validation context key: the directory relative model paths resolve against."""


def looks_like_path(value: str) -> bool:
    """Whether a model name is meant as a directory (it has a path separator or starts with
    ``.`` or ``~``) rather than a built-in name."""
    return "/" in value or "\\" in value or value.startswith((".", "~"))


class LLMModelSpec(_Section):
    """``model``: a built-in language model (``prunekit.models.available_llms()``) or a local
    Hugging Face directory with ``config.json`` (relative to the recipe's directory); the
    plain string ``model: smollm2-135m`` is short for ``model: {name: smollm2-135m}``."""

    name: str
    dtype: Literal["float32", "bfloat16"] = "float32"

    @field_validator("name")
    @classmethod
    def _known(cls, value: str, info: ValidationInfo) -> str:
        base = (info.context or {}).get(BASE_DIR) if isinstance(info.context, dict) else None
        if looks_like_path(value):
            folder = Path(value).expanduser()
            if base is not None and not folder.is_absolute():
                folder = Path(base) / folder
            if base is not None and not (folder / "config.json").is_file():
                raise ValueError(
                    f"{value!r}: {str(folder)!r} is not a Hugging Face model directory (no "
                    "config.json there); fix the path (relative to the recipe's directory) "
                    "or use a built-in model name"
                )
            return value
        if _names_checked(info) and value.strip().lower() not in registered_names("llm"):
            raise ValueError(
                f"{value!r} is not a built-in language model; valid: "
                f"{', '.join(registered_names('llm'))}, or a local Hugging Face directory such as "
                "./my-model"
            )
        return value.strip().lower()

    @property
    def is_directory(self) -> bool:
        """Whether :attr:`name` is a directory (else a built-in name)."""
        return looks_like_path(self.name)


class TextDataSpec(_Section):
    """``data``: a built-in text dataset (``prunekit.data.text.available_text_datasets()``)
    and the calibration batch drawn from its calibration works: ``calibration_sequences``
    windows of ``seq_len`` tokens, chosen by ``seed``."""

    name: str = "shakespeare"
    calibration_sequences: int = Field(32, ge=1)
    seq_len: int = Field(512, ge=2)
    seed: int = 0

    @field_validator("name")
    @classmethod
    def _known(cls, value: str, info: ValidationInfo) -> str:
        key = value.strip().lower().replace("-", "_")
        if _names_checked(info) and key not in registered_names("text"):
            raise ValueError(
                f"{value!r} is not a text dataset; valid: {', '.join(registered_names('text'))}"
            )
        return key


class LLMDistillSpec(_Section):
    """``recovery.distill``: a short logit distillation from the dense model into the pruned
    one (:func:`prunekit.llm.distill`, in place, AdamW, progress bar). The training text is
    the calibration works only: all of it cut into ``seq_len``-token windows (default the
    data section's), or ``sequences`` windows drawn with the data section's seed. Training
    stops at ``max_seconds`` (the function's default: 900) or ``max_steps``. The other keys
    are the function's and default to its values."""

    max_seconds: float | None = Field(None, gt=0)
    max_steps: int | None = Field(None, ge=1)
    lr: float | None = Field(None, gt=0)
    temperature: float | None = Field(None, gt=0)
    alpha_ce: float | None = Field(None, ge=0, le=1)
    batch_size: int | None = Field(None, ge=1)
    epochs: int | None = Field(None, ge=1)
    warmup_steps: int | None = Field(None, ge=0)
    weight_decay: float | None = Field(None, ge=0)
    gradient_checkpointing: bool | None = None
    sequences: int | None = Field(None, ge=1)
    seq_len: int | None = Field(None, ge=2)

    def call_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`prunekit.llm.distill` (the windows aside)."""
        skip = ("sequences", "seq_len")
        return {k: v for k, v in self if k not in skip and v is not None}


class LLMRecoverySpec(_Section):
    """``recovery``: optional distillation after the cut."""

    distill: LLMDistillSpec | None = None


class SpeedSpec(_Section):
    """``evaluation.speed``: batch-1 prefill and decode tokens/s
    (:func:`prunekit.evaluation.generation_speed`); ``speed: false`` skips it."""

    prompt_tokens: int = Field(128, ge=1)
    new_tokens: int = Field(32, ge=1)
    repeats: int = Field(3, ge=1)
    warmup: int = Field(1, ge=0)
    threads: int | None = Field(None, ge=1)


class SampleSpec(_Section):
    """``evaluation.sample``: a greedy continuation of ``prompt`` shown in the report."""

    prompt: str = "The capital of France is"
    new_tokens: int = Field(8, ge=1)


def _section_or_off(value: Any) -> Any:
    """``true`` means the section with its defaults, ``false`` (or null) means off."""
    if value is True:
        return {}
    return None if value is False else value


class LLMEvaluationSpec(_Section):
    """``evaluation``: perplexity over fixed-length windows of the held-out works (``seq_len``
    default: the data section's; ``stride`` default ``seq_len``; the first ``windows``
    windows, ``null`` for all), next-token ``agreement`` with the dense model, ``speed`` and
    a generated ``sample`` (each ``false`` to skip)."""

    seq_len: int | None = Field(None, ge=2)
    stride: int | None = Field(None, ge=1)
    windows: int | None = Field(16, ge=1)
    batch_size: int = Field(1, ge=1)
    agreement: bool = True
    speed: SpeedSpec | None = Field(default_factory=lambda: SpeedSpec.model_construct())
    sample: SampleSpec | None = Field(default_factory=lambda: SampleSpec.model_construct())

    _off = field_validator("speed", "sample", mode="before")(_section_or_off)

    @model_validator(mode="after")
    def _stride(self) -> LLMEvaluationSpec:
        if self.stride is not None and self.seq_len is not None and self.stride > self.seq_len:
            raise ValueError(f"stride {self.stride} exceeds seq_len {self.seq_len}; use <=")
        return self


class LLMOutputSpec(_Section):
    """``output``: the run directory and whether the pruned model is saved there
    (``model/``, loadable with ``AutoModelForCausalLM.from_pretrained``)."""

    dir: str = "runs/{name}"
    save_model: bool = True


def _steps(value: Any) -> Any:
    """One step (a mapping) is a list of one."""
    return [value] if isinstance(value, dict) else value


class LLMRecipe(_Section):
    """A whole LLM recipe (module docstring). ``base_dir`` resolves relative paths.

    Example:
        >>> r = LLMRecipe.model_validate({"kind": "llm", "model": "smollm2-135m",
        ...     "prune": {"method": "depth", "blocks": 2}})
        >>> r.model.name, r.prune[0].method, r.eval_seq_len, r.run_dir().as_posix()
        ('smollm2-135m', 'depth', 512, 'runs/run')
    """

    kind: Literal["llm"]
    name: str = "run"
    threads: int | None = Field(None, ge=1)
    model: LLMModelSpec
    data: TextDataSpec = Field(default_factory=lambda: TextDataSpec.model_construct())
    prune: list[PruneStep] = Field(min_length=1)
    recovery: LLMRecoverySpec = Field(default_factory=LLMRecoverySpec)
    evaluation: LLMEvaluationSpec = Field(
        default_factory=lambda: LLMEvaluationSpec.model_validate({})
    )
    output: LLMOutputSpec = Field(default_factory=LLMOutputSpec)
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _source: str = PrivateAttr(default="<recipe>")

    @field_validator("model", mode="before")
    @classmethod
    def _model_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    _one_step = field_validator("prune", mode="before")(_steps)

    @model_validator(mode="after")
    def _mask_kept(self) -> LLMRecipe:
        sparse = [i for i, s in enumerate(self.prune) if s.method == "sparse"]
        if sparse and self.recovery.distill is not None:
            raise ValueError(
                f"recovery.distill trains every weight, so it would fill in the zeros of the "
                f"sparse step (prune.{sparse[0]}); remove recovery.distill, or prune with a "
                "structured or depth step"
            )
        return self

    @model_validator(mode="after")
    def _windows(self) -> LLMRecipe:
        stride = self.evaluation.stride
        if stride is not None and stride > self.eval_seq_len:
            raise ValueError(
                f"evaluation.stride {stride} exceeds the evaluation seq_len "
                f"{self.eval_seq_len}; use stride <= seq_len"
            )
        return self

    @property
    def eval_seq_len(self) -> int:
        """The evaluation window length (``evaluation.seq_len``, else ``data.seq_len``)."""
        return self.evaluation.seq_len or self.data.seq_len

    @property
    def base_dir(self) -> Path:
        """The directory relative paths in the recipe are resolved against."""
        return self._base_dir

    @property
    def source(self) -> str:
        """Where the recipe came from (a file name, for messages)."""
        return self._source

    def located(self, base_dir: str | Path, source: str) -> LLMRecipe:
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
