"""Hugging Face models: ``save_pretrained`` a pruned model so it loads back from disk.

transformers rebuilds a model from its ``config.json``; prunekit keeps the config coherent
after a cut (``intermediate_size``, ``num_key_value_heads`` ...), which suffices when the
config can describe the pruned shapes (uniform FFN widths, LLaMA-style ``head_dim``). It
cannot when heads were cut and the attention derives its head size as
``hidden_size / num_attention_heads`` (BERT, MiniLM, ViT, GPT-2 in transformers 5, which
dropped ``prune_heads``). :func:`save_pretrained` therefore writes, beside transformers' own
files, the unpruned config, the pruning plan and the example inputs; :func:`from_pretrained`
rebuilds the unpruned architecture from that config (no download, no random weights kept),
replays the plan and loads the saved weights. Directories without prunekit's files load with
plain transformers.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import ExportError
from ..plan import PruningPlan, pruning_history
from ..surgery.configs import base_config
from .structure import flatten_structure, unflatten_structure

__all__ = ["save_pretrained", "from_pretrained", "PRUNEKIT_HF_FILE"]

PRUNEKIT_HF_FILE = "prunekit.json"
_INPUTS_FILE = "prunekit_inputs.safetensors"


def save_pretrained(model: nn.Module, path: str | Path, **kwargs: Any) -> Path:
    """``model.save_pretrained(path)`` plus what rebuilds a pruned model exactly.

    Args:
        model: A Hugging Face ``PreTrainedModel`` (pruned by prunekit or not).
        path: The output directory.
        **kwargs: Passed to ``save_pretrained``.

    Returns:
        ``path``.

    Raises:
        ExportError: ``model`` has no ``save_pretrained``.

    Example (needs transformers, so not run as a doctest)::

        from transformers import AutoModel
        pruned = prunekit.prune(bert, inputs, module_ratios={"*.query": 0.3}).model
        prunekit.export.save_pretrained(pruned, "minilm-pruned")
        again = prunekit.export.from_pretrained(AutoModel, "minilm-pruned")
    """
    saver = getattr(model, "save_pretrained", None)
    if not callable(saver):
        raise ExportError(
            f"{type(model).__name__} has no save_pretrained (not a Hugging Face model); use "
            "prunekit.save(model, path) instead"
        )
    out = Path(path)
    saver(str(out), **kwargs)
    steps, inputs = pruning_history(model)
    for stale in (out / PRUNEKIT_HF_FILE, out / _INPUTS_FILE):
        stale.unlink(missing_ok=True)
    base = base_config(model)
    if not steps or base is None:
        return out
    spec, tensors = flatten_structure(inputs)
    save_file(tensors, str(out / _INPUTS_FILE))
    record = {
        "format": 1,
        "base_config": base,
        "plans": [p.to_dict() for p in steps],
        "inputs": spec,
    }
    (out / PRUNEKIT_HF_FILE).write_text(json.dumps(record, indent=1, default=str))
    return out


def _transformers() -> Any:
    try:
        return importlib.import_module("transformers")
    except ImportError as exc:
        raise ExportError(
            "loading a Hugging Face model needs transformers (pip install transformers)"
        ) from exc


def from_pretrained(auto_class: Any, path: str | Path, **kwargs: Any) -> nn.Module:
    """Load a model written by :func:`save_pretrained` (or any ``save_pretrained`` folder).

    Args:
        auto_class: The transformers class to build with, e.g. ``AutoModel`` or
            ``BertForSequenceClassification`` (anything with ``from_config`` and
            ``from_pretrained``).
        path: The directory.
        **kwargs: Passed to ``from_pretrained`` for folders without prunekit's record.

    Returns:
        The model in eval mode; a pruned one carries its pruning history.

    Raises:
        ExportError: the record is damaged or its weights do not fit the rebuilt model.
    """
    out = Path(path)
    record_path = out / PRUNEKIT_HF_FILE
    if not record_path.exists():
        model = auto_class.from_pretrained(str(out), **kwargs)
        return model.eval()  # type: ignore[no-any-return]
    try:
        record = json.loads(record_path.read_text())
        base = dict(record["base_config"])
        plans = [PruningPlan.from_dict(d) for d in record["plans"]]
        inputs = unflatten_structure(record["inputs"], load_file(str(out / _INPUTS_FILE)))
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ExportError(f"{record_path} is damaged ({exc}); save the model again") from exc
    transformers = _transformers()
    config = transformers.AutoConfig.for_model(**base)
    model = auto_class.from_config(config)
    for plan in plans:
        plan.apply(model, inputs, inplace=True)
    _load_weights(model, out)
    return model.eval()  # type: ignore[no-any-return]


def _load_weights(model: nn.Module, out: Path) -> None:
    files = sorted(out.glob("model*.safetensors"))
    if not files:
        raise ExportError(f"{out} has no model*.safetensors; save the model again")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state.update(load_file(str(f)))
    own = model.state_dict()
    # a task model saved from a base model (or vice versa) differs by the base prefix
    prefix = getattr(model, "base_model_prefix", "")
    if prefix and not (state.keys() & own.keys()):
        state = {f"{prefix}.{k}": v for k, v in state.items()}
    wrong = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if wrong:
        raise ExportError(
            f"saved tensor {wrong[0]} has shape {tuple(state[wrong[0]].shape)}, the rebuilt "
            f"model has {tuple(own[wrong[0]].shape)}; the record and weights disagree"
        )
    result = model.load_state_dict(state, strict=False)
    tied = {n for n, p in model.named_parameters(remove_duplicate=False)} - set(
        dict(model.named_parameters())
    )
    missing = [k for k in result.missing_keys if k not in tied and not _is_tied(model, k)]
    if missing or result.unexpected_keys:
        raise ExportError(
            f"weights in {out} do not fit the rebuilt model: missing {missing[:5]}, unexpected "
            f"{list(result.unexpected_keys)[:5]}"
        )


def _is_tied(model: nn.Module, key: str) -> bool:
    """``key`` names a tensor that shares storage with another one that was loaded."""
    params = dict(model.named_parameters(remove_duplicate=False))
    t = params.get(key)
    if t is None:
        return False
    return any(o is t and n != key for n, o in params.items())
