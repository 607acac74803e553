"""Keep model config objects (Hugging Face ``PretrainedConfig`` and look-alikes) coherent.

After a cut, a config int whose value was the width of some pruned dimension (a group's
unit count, or a head count recorded at a reshape) takes the new width, so that
``save_pretrained`` -> ``from_pretrained`` rebuilds the pruned shapes. When dimensions that
shared one config value were cut to different widths, the config cannot describe the
model: a warning says so and the value is left alone.
"""

from __future__ import annotations

import copy
import warnings
from collections import defaultdict

from torch import nn

from ..model_record import ensure_record, record_of

__all__ = ["sync_configs", "base_config"]

_SIZE_WORDS = (
    "head", "size", "dim", "hidden", "intermediate", "ffn", "inner", "embd", "channels",
    "width", "d_model", "d_ff", "d_kv", "embed", "features",
)  # fmt: skip


# counts that happen to equal a width but are never one
_NOT_WIDTHS = (
    "layer", "vocab", "position", "max", "type", "label", "token", "_id", "window", "bucket",
    "group", "expert", "rank", "length", "seq", "block", "stage", "depth", "num_channels",
)  # fmt: skip


def _configs(model: nn.Module) -> list[object]:
    seen: dict[int, object] = {}
    for m in model.modules():
        cfg = getattr(m, "config", None)
        if cfg is not None and hasattr(cfg, "to_dict") and id(cfg) not in seen:
            seen[id(cfg)] = cfg
    return list(seen.values())


def sync_configs(model: nn.Module, widths: list[tuple[int, int]]) -> None:
    """Update config ints equal to an old width; ``widths`` holds (old, new) pairs."""
    if not widths:
        return
    _remember_base(model)
    new_of: dict[int, set[int]] = defaultdict(set)
    for old, new in widths:
        new_of[old].add(new)
    for cfg in _configs(model):
        for attr, val in list(vars(cfg).items()):
            if isinstance(val, bool) or not isinstance(val, int) or val not in new_of:
                continue
            low = attr.lower()
            if not any(w in low for w in _SIZE_WORDS) or any(w in low for w in _NOT_WIDTHS):
                continue
            targets = new_of[val]
            if len(targets) == 1:
                setattr(cfg, attr, next(iter(targets)))
            else:
                warnings.warn(
                    f"prunekit: config.{attr}={val} describes dimensions that were cut to "
                    f"different widths {sorted(targets)}; the config cannot rebuild this "
                    "model. Save it with its pruning plan (prunekit plan + state_dict) or "
                    "prune those groups uniformly (scope='local').",
                    UserWarning,
                    stacklevel=4,
                )


def _remember_base(model: nn.Module) -> None:
    """Keep the root model's config as it was before its first cut (it follows deep copies,
    so a model pruned in several steps remembers the unpruned config)."""
    cfg = getattr(model, "config", None)
    record = record_of(model)
    if cfg is None or (record is not None and record.base_config is not None):
        return
    to_dict = getattr(cfg, "to_dict", None)
    if callable(to_dict):
        ensure_record(model).base_config = copy.deepcopy(to_dict())


def base_config(model: nn.Module) -> dict[str, object] | None:
    """The root config (``model.config.to_dict()``) before prunekit first cut ``model``;
    ``None`` if it was never cut or has no config."""
    record = record_of(model)
    value = record.base_config if record is not None else None
    return copy.deepcopy(value) if isinstance(value, dict) else None
