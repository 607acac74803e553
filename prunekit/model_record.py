"""What prunekit remembers on a model it cut: one documented attribute, :data:`RECORD_ATTR`.

A pruned model carries a :class:`ModelRecord` at ``model._prunekit_record``: the plans cut
into it, in order, with the example inputs they were traced with (so
:func:`prunekit.plan.pruning_history` can replay them on a fresh instance), and the root
config before the first cut (so a Hugging Face model saved after pruning can be rebuilt).
It is a plain attribute: it follows ``copy.deepcopy`` and pickling, never enters the
``state_dict``, and nothing else prunekit keeps lives on the model. Read it with
:func:`record_of`; only prunekit writes it.

Example:
    >>> import torch
    >>> net = torch.nn.Linear(2, 2)
    >>> record_of(net) is None
    True
    >>> ensure_record(net).steps.append("plan")
    >>> import copy
    >>> record_of(copy.deepcopy(net)).steps
    ['plan']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

__all__ = ["RECORD_ATTR", "ModelRecord", "record_of", "ensure_record"]

RECORD_ATTR = "_prunekit_record"
"""The attribute of a pruned model that holds its :class:`ModelRecord`."""

_LEGACY_HISTORY, _LEGACY_CONFIG = "_prunekit_history", "_prunekit_base_config"


@dataclass
class ModelRecord:
    """prunekit's memory of one model.

    Attributes:
        steps: the :class:`~prunekit.plan.PruningPlan` of every cut, in order.
        example_inputs: the inputs the latest cut was traced with.
        base_config: the root ``config.to_dict()`` before the first cut (``None``: the model
            has no config, or was never cut).
    """

    steps: list[Any] = field(default_factory=list)
    example_inputs: Any = None
    base_config: dict[str, Any] | None = None


def record_of(model: nn.Module) -> ModelRecord | None:
    """The record of ``model`` (``None`` if prunekit never wrote one). Models saved by
    earlier versions, which kept two loose attributes, are read too."""
    record = getattr(model, RECORD_ATTR, None)
    if isinstance(record, ModelRecord):
        return record
    state = vars(model)
    if _LEGACY_HISTORY not in state and _LEGACY_CONFIG not in state:
        return None
    steps, inputs = state.get(_LEGACY_HISTORY, ([], None))
    return ModelRecord(list(steps), inputs, state.get(_LEGACY_CONFIG))


def ensure_record(model: nn.Module) -> ModelRecord:
    """The record of ``model``, created (and attached) if it has none."""
    record = record_of(model) or ModelRecord()
    if getattr(model, RECORD_ATTR, None) is not record:
        setattr(model, RECORD_ATTR, record)
    return record
