"""FSDP2 (``torch.distributed.fsdp.fully_shard``): score and cut on gathered weights, recover
sharded.

The choice (docs/DISTRIBUTED.md): the cut needs every weight of a group at once, so it is
made on a plain copy of the model holding the *full* weights, on every rank, with the
calibration batches sharded and the statistics all-reduced (the plan is then checked
identical on every rank, as always). The pruned plain model is sharded again with
``fully_shard`` for recovery, which runs like any other training of an FSDP2 model.
"""

from __future__ import annotations

from torch import nn

__all__ = ["gather_full_weights", "is_fully_sharded"]


def is_fully_sharded(model: nn.Module) -> bool:
    """Whether ``model`` (or a submodule) was wrapped with FSDP2's ``fully_shard``."""
    from torch.distributed.fsdp import FSDPModule

    return any(isinstance(m, FSDPModule) for m in model.modules())


def gather_full_weights(sharded: nn.Module, plain: nn.Module) -> nn.Module:
    """Load the full (gathered) weights of the FSDP2 model ``sharded`` into ``plain`` (the
    same architecture, unwrapped, e.g. built by the same factory) and return ``plain``.

    A collective: every rank calls it. Prune ``plain`` with the usual API afterwards.
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    full = get_model_state_dict(sharded, options=StateDictOptions(full_state_dict=True))
    plain.load_state_dict(full)
    return plain
