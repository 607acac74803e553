"""The prune steps of an LLM recipe (``prune: [{method: ...}, ...]``), one typed section
per library function: ``structured`` (:func:`prunekit.llm.prune_blockwise`), ``depth``
(:func:`prunekit.llm.prune_depth`), ``sparse`` (:func:`prunekit.llm.sparsify`). Each
step's :meth:`call_kwargs` is what it passes; keys left out take the function's defaults.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from .schema import _names_checked, _Section

__all__ = [
    "SPARSE_CRITERIA",
    "STEP_METHODS",
    "DepthStep",
    "PruneStep",
    "SparseStep",
    "StructuredStep",
    "registered_names",
]

STEP_METHODS = ("structured", "depth", "sparse")
"""The values of a prune step's ``method``."""


def registered_names(kind: str) -> list[str]:
    """Live registry names (imported here: the registries import torch)."""
    if kind == "llm":
        from ..models import available_llms

        return list(available_llms())
    if kind == "text":
        from ..data.text import available_text_datasets

        return list(available_text_datasets())
    if kind == "criterion":
        from ..llm.criteria import available_llm_criteria

        return list(available_llm_criteria())
    from ..llm.depth import METRICS

    return list(METRICS)


class StructuredStep(_Section):
    """``method: structured``: :func:`prunekit.llm.prune_blockwise` removes query heads
    within each KV group and FFN neurons of every block, scored by ``criterion`` on
    calibration activations. ``allocation: uniform`` (every block the same, so the saved
    config describes the result): ``head_ratio`` and ``ffn_ratio``, or ``target`` (the
    fraction of the decoder blocks' projection parameters to remove, heads first);
    ``allocation: adaptive`` (FLAP's global scores): ``target`` shared by ``units``.
    ``compensation``: ``none``, ``bias`` (FLAP's), ``lsq`` (least-squares refit of
    ``o_proj``/``down_proj``), or ``auto`` (the function's default: bias for ``flap``).
    ``round_to``, ``lsq_damp`` and ``micro_batch`` (Taylor) default to the function's."""

    method: Literal["structured"]
    criterion: str = "flap"
    allocation: Literal["uniform", "adaptive"] = "uniform"
    head_ratio: float = Field(0.0, ge=0, lt=1)
    ffn_ratio: float | None = Field(None, ge=0, lt=1)
    target: float | None = Field(None, gt=0, lt=1)
    units: list[Literal["heads", "ffn"]] | None = Field(None, min_length=1)
    compensation: Literal["auto", "none", "bias", "lsq"] = "auto"
    round_to: int | None = Field(None, ge=1)
    lsq_damp: float | None = Field(None, ge=0)
    micro_batch: int | None = Field(None, ge=1)

    @field_validator("criterion")
    @classmethod
    def _criterion(cls, value: str, info: ValidationInfo) -> str:
        if _names_checked(info) and value not in registered_names("criterion"):
            raise ValueError(
                f"{value!r} is not an LLM criterion; valid: {', '.join(registered_names('criterion'))}"
            )
        return value

    @model_validator(mode="after")
    def _sizes(self) -> StructuredStep:
        if self.allocation == "adaptive":
            if self.target is None or self.ffn_ratio is not None or self.head_ratio:
                raise ValueError(
                    "allocation adaptive takes target (fraction of the block parameters, "
                    "e.g. 0.2) and optionally units, not head_ratio / ffn_ratio"
                )
        elif (self.ffn_ratio is None) == (self.target is None):
            raise ValueError(
                "give exactly one of ffn_ratio (fraction of FFN neurons, e.g. 0.2) and target "
                "(fraction of the block parameters, e.g. 0.2)"
            )
        if self.units is not None and self.allocation != "adaptive":
            raise ValueError("units applies to allocation: adaptive; remove it or add that")
        return self

    def call_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`prunekit.llm.prune_blockwise`."""
        kwargs: dict[str, Any] = {"criterion": self.criterion, "allocation": self.allocation,
                                  "head_ratio": self.head_ratio, "ffn_ratio": self.ffn_ratio,
                                  "target": self.target}  # fmt: skip
        if self.compensation != "auto":
            kwargs["compensation"] = self.compensation
        for name in ("units", "round_to", "lsq_damp", "micro_batch"):
            if getattr(self, name) is not None:
                kwargs[name] = getattr(self, name)
        return kwargs


class DepthStep(_Section):
    """``method: depth``: :func:`prunekit.llm.prune_depth` removes the decoder blocks of
    lowest influence on the residual stream: ``blocks`` of them, or the fewest that remove
    ``ratio`` of the decoder-block parameters; ``metric``: ``cosine`` or ``angular``;
    ``iterative`` re-measures after each removal."""

    method: Literal["depth"]
    blocks: int | None = Field(None, ge=1)
    ratio: float | None = Field(None, gt=0, lt=1)
    metric: str = "cosine"
    iterative: bool = False

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str, info: ValidationInfo) -> str:
        if _names_checked(info) and value not in registered_names("metric"):
            raise ValueError(
                f"{value!r} is not a block-influence metric; valid: "
                f"{', '.join(registered_names('metric'))}"
            )
        return value

    @model_validator(mode="after")
    def _one(self) -> DepthStep:
        if (self.blocks is None) == (self.ratio is None):
            raise ValueError(
                "give exactly one of blocks (how many to remove, e.g. 4) and ratio (fraction "
                "of the decoder-block parameters, e.g. 0.2)"
            )
        return self

    def call_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`prunekit.llm.prune_depth`."""
        return {"blocks": self.blocks, "ratio": self.ratio, "metric": self.metric,
                "iterative": self.iterative}  # fmt: skip


_NM = re.compile(r"^(\d+):(\d+)$")
SPARSE_CRITERIA = ("wanda", "sparsegpt", "magnitude")


class SparseStep(_Section):
    """``method: sparse``: :func:`prunekit.llm.sparsify` zeroes single weights of every
    block's projections. ``criterion``: ``wanda``, ``sparsegpt`` or ``magnitude`` (the
    function's ``method``); ``sparsity`` (default 0.5; fixed to ``1 - N/M`` by an N:M
    ``pattern``); ``pattern``: ``unstructured`` or ``N:M`` such as ``2:4``; ``allocation``:
    ``uniform`` or ``owl`` (unstructured only). ``owl_lambda``, ``owl_threshold`` and
    ``damp`` (SparseGPT) default to the function's values."""

    method: Literal["sparse"]
    criterion: Literal["wanda", "sparsegpt", "magnitude"] = "wanda"
    sparsity: float | None = Field(None, gt=0, lt=1)
    pattern: str = "unstructured"
    allocation: Literal["uniform", "owl"] = "uniform"
    owl_lambda: float | None = Field(None, ge=0)
    owl_threshold: float | None = Field(None, gt=0)
    damp: float | None = Field(None, ge=0)

    @field_validator("pattern", mode="before")
    @classmethod
    def _pattern(cls, value: Any) -> Any:
        if value == "unstructured":
            return value
        match = _NM.match(str(value)) if isinstance(value, str) else None
        if match is None or not 0 < int(match[1]) < int(match[2]):
            raise ValueError(
                f"{value!r} is not a sparsity pattern; valid: unstructured, or N:M with "
                "0 < N < M such as 2:4 (write it quoted: '2:4')"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SparseStep:
        match = _NM.match(self.pattern)
        if match is not None and self.allocation == "owl":
            raise ValueError(
                f"allocation owl varies the sparsity per block, pattern {self.pattern} fixes "
                "it; use pattern: unstructured with owl, or allocation: uniform"
            )
        if match is not None and self.sparsity is not None:
            fixed = 1 - int(match[1]) / int(match[2])
            if abs(self.sparsity - fixed) > 1e-9:
                raise ValueError(
                    f"sparsity {self.sparsity} contradicts pattern {self.pattern} (sparsity "
                    f"{fixed:g}); remove sparsity"
                )
        return self

    def call_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`prunekit.llm.sparsify`."""
        kwargs: dict[str, Any] = {"method": self.criterion, "pattern": self.pattern,
                                  "allocation": self.allocation}  # fmt: skip
        for name in ("sparsity", "owl_lambda", "owl_threshold", "damp"):
            if getattr(self, name) is not None:
                kwargs[name] = getattr(self, name)
        return kwargs


PruneStep = Annotated[StructuredStep | DepthStep | SparseStep, Field(discriminator="method")]
