"""Run a model (and optionally its unpruned reference) over data once and keep the outputs.

Every metric in :mod:`prunekit.evaluation` works on tensors of outputs and targets; this module
produces them. A model and its reference see the *same* batches in one pass, so a shuffling
DataLoader still pairs each pruned output with the reference output of the same input.

Batch formats understood (what a ``DataLoader`` yields):

- ``(inputs, targets)``: the usual pair; ``inputs`` may itself be a tuple or dict;
- ``(x1, x2, ..., targets)``: several positional inputs, the last item is the target;
- ``(inputs,)`` or a bare tensor: no targets;
- a dict: keyword inputs; a ``"labels"``, ``"label"``, ``"targets"`` or ``"target"`` key is the
  target and is not passed to the model.

Model outputs: a tensor; an object with a ``logits`` attribute or key (Hugging Face); a
tuple/list (its first item); or whatever ``output_fn`` extracts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset

from prunekit.errors import DataError
from prunekit.evaluation._runtime import eval_mode, model_device, to_device
from prunekit.graph import call_model
from prunekit.outputs import main_output

__all__ = [
    "Predictions",
    "collect_predictions",
    "extract_output",
    "first_inputs",
    "split_batch",
]

_TARGET_KEYS = ("labels", "label", "targets", "target")


@dataclass
class Predictions:
    """Outputs of one pass over a dataset, on the CPU, in data order.

    Attributes:
        outputs: The model's outputs, concatenated over batches (``(N, ...)``).
        targets: The targets, or ``None`` when the data carries none.
        reference_outputs: The reference model's outputs on the same inputs, or ``None``.

    Example:
        >>> import torch
        >>> p = Predictions(torch.zeros(3, 2), torch.tensor([0, 1, 1]))
        >>> len(p), p.reference_outputs is None
        (3, True)
    """

    outputs: torch.Tensor
    targets: torch.Tensor | None = None
    reference_outputs: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.outputs.shape[0])


def split_batch(batch: Any) -> tuple[Any, Any]:
    """Split one batch into ``(inputs, targets)``; ``targets`` is ``None`` when absent.

    Example:
        >>> import torch
        >>> x, y = split_batch((torch.zeros(2, 3), torch.tensor([0, 1])))
        >>> tuple(x.shape), y.tolist()
        ((2, 3), [0, 1])
        >>> split_batch({"input_ids": torch.ones(1, 4), "labels": torch.tensor([1])})[1]
        tensor([1])
        >>> split_batch(torch.zeros(2))[1] is None
        True
    """
    if isinstance(batch, torch.Tensor):
        return batch, None
    if isinstance(batch, dict):
        keys = [k for k in _TARGET_KEYS if k in batch]
        inputs = {k: v for k, v in batch.items() if k not in keys}
        return inputs, (batch[keys[0]] if keys else None)
    if isinstance(batch, (tuple, list)):
        if len(batch) == 1:
            return batch[0], None
        if len(batch) == 2:
            return batch[0], batch[1]
        if len(batch) > 2:
            return tuple(batch[:-1]), batch[-1]
    raise DataError(
        f"a batch of type {type(batch).__name__} (length {_len(batch)}) is not understood; "
        "yield (inputs, targets), (inputs,), a tensor, or a dict with a 'labels' key"
    )


def first_inputs(data: Iterable[Any] | Dataset[Any], *, batch_size: int = 64) -> Any:
    """The inputs of the first batch of ``data`` (example inputs for cost measurement).

    Example:
        >>> import torch
        >>> from torch.utils.data import TensorDataset
        >>> ds = TensorDataset(torch.zeros(10, 3), torch.zeros(10))
        >>> tuple(first_inputs(ds, batch_size=4).shape)
        (4, 3)
    """
    for batch in _batches(data, batch_size):
        return split_batch(batch)[0]
    raise DataError("data is empty: it yielded no batch; pass a non-empty DataLoader or Dataset")


def collect_predictions(
    model: nn.Module,
    data: Iterable[Any] | Dataset[Any],
    *,
    reference: nn.Module | None = None,
    max_batches: int | None = None,
    batch_size: int = 256,
    output_fn: Callable[[Any], torch.Tensor] | None = None,
) -> Predictions:
    """Run ``model`` (and ``reference``) over ``data`` in eval mode under ``inference_mode``.

    Inputs are moved to each model's device; outputs are detached and moved to the CPU
    (half-precision outputs are cast to ``float32``). Training flags are restored afterwards.

    Args:
        model: The model to evaluate.
        data: A ``DataLoader`` or any iterable of batches, or a map-style ``Dataset`` (batched
            here with ``batch_size``, in order).
        reference: An optional second model (e.g. the unpruned original) run on every batch.
        max_batches: Stop after this many batches (``None``: the whole dataset).
        batch_size: Batch size used when ``data`` is a ``Dataset``.
        output_fn: Maps a raw model output to the tensor to keep (default: see module doc).

    Returns:
        :class:`Predictions` with ``N`` rows.

    Raises:
        DataError: If the data is empty, a batch is not understood, or only some batches
            carry targets.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> ds = TensorDataset(torch.randn(10, 4), torch.randint(0, 3, (10,)))
        >>> p = collect_predictions(nn.Linear(4, 3), DataLoader(ds, batch_size=4))
        >>> tuple(p.outputs.shape), tuple(p.targets.shape)
        ((10, 3), (10,))
    """
    if max_batches is not None and (isinstance(max_batches, bool) or max_batches < 1):
        raise DataError(f"max_batches={max_batches!r} must be a positive int or None (all)")
    extract = output_fn or extract_output
    outs: list[torch.Tensor] = []
    refs: list[torch.Tensor] = []
    targets: list[torch.Tensor | None] = []
    models = [model] if reference is None else [model, reference]
    with torch.inference_mode(), ExitStack() as stack:
        for m in models:
            stack.enter_context(eval_mode(m))
        for i, batch in enumerate(_batches(data, batch_size)):
            if max_batches is not None and i >= max_batches:
                break
            inputs, target = split_batch(batch)
            outs.append(_run(model, inputs, extract))
            if reference is not None:
                refs.append(_run(reference, inputs, extract))
            targets.append(None if target is None else torch.as_tensor(target).detach().cpu())
    if not outs:
        raise DataError(
            "data is empty: it yielded no batch; pass a non-empty DataLoader or Dataset"
        )
    return Predictions(
        outputs=torch.cat(outs),
        targets=_cat_targets(targets),
        reference_outputs=torch.cat(refs) if refs else None,
    )


def extract_output(output: Any) -> torch.Tensor:
    """The tensor to keep from a raw model output (tensor, ``.logits``, first of a tuple).

    Example:
        >>> import torch
        >>> extract_output((torch.ones(1), torch.zeros(1)))
        tensor([1.])
    """
    found = main_output(output)
    if found is not None:
        return found
    raise DataError(
        f"cannot find the output tensor in a model output of type {type(output).__name__}; "
        "pass output_fn=lambda out: <the tensor to evaluate>"
    )


def _run(model: nn.Module, inputs: Any, extract: Callable[[Any], torch.Tensor]) -> torch.Tensor:
    out = extract(call_model(model, to_device(inputs, model_device(model))))
    out = out.detach().cpu()
    return out.float() if out.is_floating_point() and out.dtype != torch.float64 else out


def _cat_targets(targets: list[torch.Tensor | None]) -> torch.Tensor | None:
    present = [t for t in targets if t is not None]
    if not present:
        return None
    if len(present) != len(targets):
        raise DataError(
            f"{len(targets) - len(present)} of {len(targets)} batches carry no targets; every "
            "batch must yield (inputs, targets), or none of them"
        )
    return torch.cat([t.reshape(-1) if t.dim() == 0 else t for t in present])


def _batches(data: Iterable[Any] | Dataset[Any], batch_size: int) -> Iterable[Any]:
    if isinstance(data, Dataset) and not isinstance(data, IterableDataset):
        return DataLoader(data, batch_size=batch_size, shuffle=False)
    if not isinstance(data, Iterable):
        raise DataError(
            f"data of type {type(data).__name__} is not iterable; pass a DataLoader, an "
            "iterable of batches or a map-style Dataset"
        )
    return data


def _len(obj: Any) -> str:
    try:
        return str(len(obj))
    except TypeError:
        return "n/a"
