"""Hugging Face models: ``save_pretrained`` a pruned model so it loads back from disk.

transformers rebuilds a model from its ``config.json``; prunekit keeps the config coherent
after a cut (``intermediate_size``, ``num_key_value_heads`` ...), which suffices when the
config can describe the pruned shapes (uniform FFN widths, LLaMA-style ``head_dim``). It
cannot when heads were cut and the attention derives its head size as
``hidden_size / num_attention_heads`` (BERT, MiniLM, ViT, GPT-2 in transformers 5, which
dropped ``prune_heads``). :func:`save_pretrained` therefore writes, beside transformers' own
files, the unpruned config, the pruning plan and the example inputs; :func:`from_pretrained`
rebuilds the unpruned architecture from that config (no download, no random weights kept),
replays the plan and loads the saved weights.

Where no plan is recorded (a decoder LLM cut by :mod:`prunekit.llm`), the config may still
not describe the weights: per-block widths (adaptive allocation), biases the
``attention_bias``/``mlp_bias`` flags do not declare, blocks removed behind a stale
``num_hidden_layers``. :func:`from_pretrained` then rebuilds the model from the config and
cuts it to the saved tensor shapes (:mod:`.hf_shapes`) before loading the weights
(transformers itself would fail on the size mismatch, or silently drop an undeclared
bias); :func:`save_pretrained` warns when plain transformers cannot reload the folder.
Folders the config describes load with plain transformers.
"""

from __future__ import annotations

import importlib
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import ExportError
from ..plan import PruningPlan, pruning_history
from ..surgery.configs import base_config
from .hf_shapes import Shapes, align_keys, fit_to_shapes, saved_shapes, weight_files
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
        _warn_if_config_cannot_rebuild(model, out)
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
        auto_class: The transformers class to build with, e.g. ``AutoModelForCausalLM`` or
            ``BertForSequenceClassification`` (an auto class, or a model class with
            ``_from_config``, and ``from_pretrained``).
        path: The directory.
        **kwargs: Passed to transformers' ``from_pretrained`` for folders that its config
            describes (no prunekit record, every saved tensor fits the config's model).

    Where the config does not describe the saved tensors (per-block widths, undeclared
    biases, fewer blocks than ``num_hidden_layers``), the model built from the config is cut
    to the saved shapes (:func:`~.hf_shapes.fit_to_shapes`) and the weights loaded into it;
    the same fit follows a replayed pruning plan.

    Returns:
        The model in eval mode; a pruned one carries its pruning history.

    Raises:
        ExportError: the record is damaged or its weights do not fit the rebuilt model.
    """
    build = _builder(auto_class)
    out = Path(path)
    record_path = out / PRUNEKIT_HF_FILE
    if not record_path.exists():
        shapes = saved_shapes(out)
        config = _transformers().AutoConfig.from_pretrained(str(out))
        if not shapes or not _config_changes(build, config, shapes):
            model = auto_class.from_pretrained(str(out), **kwargs)
            return model.eval()  # type: ignore[no-any-return]
        model = build(config)
    else:
        model = _replay(build, out, record_path)
        shapes = saved_shapes(out)
    fit_to_shapes(model, shapes)
    _load_weights(model, out)
    return model.eval()


def _builder(auto_class: Any) -> Callable[[Any], nn.Module]:
    """``config -> model`` of an auto class (``from_config``) or a model class."""
    build = getattr(auto_class, "from_config", None) or getattr(auto_class, "_from_config", None)
    if not callable(build):
        raise ExportError(
            f"{auto_class!r} has no from_config; pass a transformers auto class such as "
            "AutoModelForCausalLM or a model class such as LlamaForCausalLM"
        )
    return build  # type: ignore[no-any-return]


def _replay(build: Callable[[Any], nn.Module], out: Path, record_path: Path) -> nn.Module:
    """The unpruned model of prunekit's record, with its pruning plans replayed."""
    try:
        record = json.loads(record_path.read_text())
        base = dict(record["base_config"])
        plans = [PruningPlan.from_dict(d) for d in record["plans"]]
        inputs = unflatten_structure(record["inputs"], load_file(str(out / _INPUTS_FILE)))
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ExportError(f"{record_path} is damaged ({exc}); save the model again") from exc
    transformers = _transformers()
    config = transformers.AutoConfig.for_model(**base)
    model = build(config)
    for plan in plans:
        plan.apply(model, inputs, inplace=True)
    return model


def _config_changes(build: Callable[[Any], nn.Module], config: Any, shapes: Shapes) -> list[str]:
    """What :func:`~.hf_shapes.fit_to_shapes` would change on the model ``build(config)``
    (built on the meta device: no memory, no initialisation cost). Empty when the model
    cannot be built on the meta device (then transformers' own loader is used)."""
    try:
        with torch.device("meta"):
            skeleton = build(config)
    except (RuntimeError, NotImplementedError, TypeError, ValueError):
        return []
    return fit_to_shapes(skeleton, shapes)


def _warn_if_config_cannot_rebuild(model: nn.Module, out: Path) -> None:
    """Warn when ``out/config.json`` (just written) does not rebuild ``model``'s tensors."""
    build = getattr(type(model), "_from_config", None)
    shapes = saved_shapes(out)
    if build is None or not shapes or not (out / "config.json").exists():
        return
    try:
        config = _transformers().AutoConfig.from_pretrained(str(out))
    except (ExportError, OSError, ValueError, KeyError):
        return  # not a transformers config: nothing to promise
    changes = _config_changes(build, config, shapes)
    if changes:
        warnings.warn(
            f"save_pretrained: {out}/config.json does not describe the saved weights "
            f"({len(changes)} difference(s), first {changes[:3]}): transformers' "
            "from_pretrained would fail or drop tensors; load the folder with "
            "prunekit.export.from_pretrained(AutoModelForCausalLM, path)",
            UserWarning,
            stacklevel=3,
        )


def _load_weights(model: nn.Module, out: Path) -> None:
    files = weight_files(out)
    if not files:
        raise ExportError(f"{out} has no model*.safetensors; save the model again")
    loaded: dict[str, torch.Tensor] = {}
    for f in files:
        loaded.update(load_file(str(f)))
    state = align_keys(model, loaded)
    own = model.state_dict()
    dtypes = {v.dtype for v in state.values() if v.is_floating_point()}
    if len(dtypes) == 1:
        model.to(dtypes.pop())  # keep the saved precision (a bf16 model stays bf16)
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
